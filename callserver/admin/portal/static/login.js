// The login page: asks for a bearer token, checks it with GET /api/whoami, keeps it in
// sessionStorage (gone when the tab closes) and says what the token's holder will see.
import { api, clearSession, el, saveSession, section, who } from "./api.js";

const main = section("login");

function describe(me) {
  if (me.role === "operator") return "operator: every customer's calls, records and settings";
  return "customer " + me.customer + ": only " + me.customer + "'s calls, records and settings";
}

function nextPage() {
  const next = new URLSearchParams(location.search).get("next");
  // Only a page of this portal: never a page of another site.
  return next && next.startsWith("/portal/") && !next.startsWith("//") ? next : "/portal/dashboard";
}

function showSession(me) {
  const logout = el("button", { text: "Log out", attrs: { type: "button", id: "logout-here" } });
  logout.addEventListener("click", () => {
    clearSession();
    showForm();
  });
  main.fill(
    el("p", { attrs: { id: "session" } },
      "Logged in as ", el("strong", { text: me.name, attrs: { id: "session-name" } }),
      el("br"), "Role: ", el("span", { text: me.role, attrs: { id: "session-role" } }),
      el("br"), "Customer: ", el("span", { text: me.customer || "all customers", attrs: { id: "session-customer" } }),
      el("br"), el("span", { text: "Sees " + describe(me) })),
    el("p", {}, el("a", { text: "Continue", className: "button", attrs: { href: nextPage(), id: "continue" } }), " ", logout),
  );
}

function showForm() {
  const input = el("input", {
    attrs: { id: "token", type: "password", name: "token", autocomplete: "off", required: true, size: 48 },
  });
  const form = el("form", { attrs: { id: "login-form" } },
    el("label", { attrs: { for: "token" } }, "Admin token"),
    input,
    el("button", { text: "Log in", attrs: { type: "submit", id: "login-button" } }),
    el("p", { className: "hint", text: "An operator makes tokens with: callserver admin token NAME --role operator|customer" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const bearer = input.value.trim();
    try {
      const me = await api("/api/whoami", { bearer });
      saveSession(bearer, me);
      showSession(me);
    } catch (err) {
      input.select();
    }
  });
  main.fill(form);
  input.focus();
}

const me = who();
if (me) showSession(me);
else showForm();
