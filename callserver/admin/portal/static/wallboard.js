// The queue wallboard: each queue's waiting callers, longest wait, agents by state and the
// service level today, and every agent's state; GET /api/queues and /api/agents every 2 s.
import { api, el, percent, poll, seconds, section, startPage, table } from "./api.js";

startPage();
const queues = section("wb-queues", "Queues");
const agents = section("wb-agents", "Agents");

function tile(label, value, alert = false, name = "") {
  return el("div", { className: alert ? "tile alert" : "tile", attrs: { "data-figure": name } },
    el("div", { className: "label", text: label }), el("div", { className: "value", text: value }));
}

function queueCard(queue) {
  const states = Object.entries(queue.agents || {});
  return el("div", { className: "queue", attrs: { "data-queue": queue.name } },
    el("h3", { text: queue.name + (queue.customer ? " · " + queue.customer : "") }),
    el("div", { className: "tiles" },
      tile("Waiting", queue.waiting, queue.waiting > 0, "waiting"),
      tile("Longest wait", seconds(queue.longest_wait), queue.longest_wait >= 60, "longest_wait"),
      tile("Service level today", percent(queue.service_level_today), false, "service_level_today"),
      tile("Answered today", queue.answered_today, false, "answered_today"),
      tile("Abandoned today", queue.abandoned_today, queue.abandoned_today > 0, "abandoned_today")),
    el("p", { className: "agent-states" }, "Agents: ", ...agentStates(states)));
}

function agentStates(states) {
  if (states.length === 0) return ["none"];
  return states.flatMap(([state, count], i) => [
    i ? ", " : "",
    el("span", { className: "state-" + state, text: count + " " + state, attrs: { "data-state": state } }),
  ]);
}

async function refresh() {
  const [q, a] = await Promise.all([api("/api/queues"), api("/api/agents")]);
  queues.fill(...(q.queues.length ? q.queues.map(queueCard) : [el("p", { className: "hint", text: "no queue" })]));
  agents.fill(table([
    { title: "Agent", value: (x) => x.name || x.id },
    { title: "Extension", value: (x) => x.extension },
    { title: "Customer", value: (x) => x.customer },
    { title: "State", value: (x) => el("span", { className: "state-" + x.state, text: x.state }) },
    { title: "Pause reason", value: (x) => x.pause_reason },
    { title: "Queues", value: (x) => (x.queues || []).join(", ") },
  ], a.agents, { empty: "no agent", rowAttrs: (x) => ({ "data-agent": x.id }) }));
}

poll(refresh, 2000);
