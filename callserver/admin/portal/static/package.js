// The customer's package: what it bought (channels, agent licences) and what it uses now,
// read-only, from GET /api/customers/{name}. An operator picks the customer.
import { api, el, section, startPage, table } from "./api.js";

const me = startPage();
const picker = section("pkg-picker");
const shown = section("pkg-view");

function row(label, value) {
  return [el("dt", { text: label }), el("dd", { text: value === null || value === undefined ? "–" : value })];
}

function recording(settings) {
  if (!settings) return null;
  return settings.calls === "none" ? "none" : settings.calls + " (" + settings.mode + ")";
}

function bought(value) {
  return value === null || value === undefined ? "no limit" : String(value);
}

async function show(name) {
  const c = await api("/api/customers/" + encodeURIComponent(name));
  const parts = [
    el("h2", { text: c.name }),
    el("dl", { className: "package", attrs: { id: "package" } },
      ...row("Channels in use / bought", c.channels_in_use + " / " + bought(c.channels)),
      ...row("Agents logged in / licences", (c.agents_logged_in ?? "–") + " / " + bought(c.agents)),
      ...row("Trunks", (c.trunks || []).join(", ") || "none"),
      ...row("Numbers", (c.numbers || []).join(", ") || "none"),
      ...row("Barring", (c.barring || []).join(", ") || "none"),
      ...row("Call recording", recording(c.recording)),
      ...row("Recordings kept (days)", c.recording_retention_days)),
  ];
  if (c.centrex_groups && c.centrex_groups.length) {
    parts.push(el("h2", { text: "Centrex groups" }), table([
      { title: "Group", value: (g) => g.id },
      { title: "Numbers", value: (g) => g.numbers.join(", ") },
      { title: "Channels in use / bought", value: (g) => g.channels_in_use + " / " + bought(g.channels) },
      { title: "Subscribers", value: (g) => g.subscribers, className: "num" },
    ], c.centrex_groups));
  }
  parts.push(el("p", { className: "hint", text: "The package is changed by the operator in config/trunks.yaml." }));
  shown.fill(...parts);
}

// An operator names the customer: picked from GET /api/customers, or typed.
async function operatorPicker() {
  let data;
  try {
    data = await api("/api/customers", { quiet: true });
  } catch (err) {
    const input = el("input", { attrs: { id: "customer", size: 16, required: true } });
    const form = el("form", {}, el("label", {}, "Customer", input), el("button", { text: "Show", attrs: { type: "submit" } }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      show(input.value.trim()).catch(() => {});
    });
    picker.fill(form);
    return;
  }
  const select = el("select", { attrs: { id: "customer" } },
    ...data.customers.map((c) => el("option", { text: c.name, attrs: { value: c.name } })));
  select.addEventListener("change", () => show(select.value).catch(() => {}));
  picker.fill(el("label", {}, "Customer ", select));
  if (data.customers.length) await show(data.customers[0].name);
}

if (me.role === "customer") show(me.customer).catch(() => {});
else operatorPicker().catch(() => {});
