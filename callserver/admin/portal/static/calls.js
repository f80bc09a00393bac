// Live calls: the calls in progress the token may see (GET /api/calls every 2 s), each with
// a button that hangs it up (DELETE /api/calls/{id}: BYE when answered, 487 before).
import { api, clock, el, poll, seconds, section, startPage, table } from "./api.js";

startPage();
const status = section("calls-status");
const list = section("calls-list");

async function hangUp(call, button) {
  button.disabled = true;
  button.textContent = "Hanging up…";
  try {
    await api("/api/calls/" + encodeURIComponent(call.id), { method: "DELETE" });
    status.fill(el("p", { className: "notice", text: "Hung up " + (call.caller || "") + " → " + (call.called || "") }));
    await refresh();
  } catch (err) {
    button.disabled = false;
    button.textContent = "Hang up";
  }
}

function hangUpButton(call) {
  const button = el("button", { text: "Hang up", className: "danger", attrs: { type: "button", "data-call-id": call.id } });
  button.addEventListener("click", () => hangUp(call, button));
  return button;
}

const COLUMNS = [
  { title: "Started (UTC)", value: (c) => clock(c.start) },
  { title: "Caller", value: (c) => c.caller },
  { title: "Called", value: (c) => c.called },
  { title: "Customer", value: (c) => c.customer },
  { title: "Trunk", value: (c) => c.trunk },
  { title: "Direction", value: (c) => c.direction },
  { title: "State", value: (c) => c.state },
  { title: "Duration", value: (c) => seconds(c.duration), className: "num" },
  { title: "Talk time", value: (c) => seconds(c.talk_time), className: "num" },
  { title: "", value: hangUpButton },
];

async function refresh() {
  const data = await api("/api/calls");
  list.fill(
    el("p", { text: data.calls.length + " call(s) in progress", attrs: { id: "calls-count" } }),
    table(COLUMNS, data.calls, { empty: "no call in progress", rowAttrs: (c) => ({ "data-call-id": c.id }) }),
  );
}

poll(refresh, 2000);
