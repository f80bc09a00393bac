// Recordings: the calls recorded (GET /api/recordings, by customer and period), each played
// in the page (the WAV fetched with the token, handed to <audio> as a blob: URL) or deleted.
import { api, blobUrl, el, seconds, section, startPage, table } from "./api.js";

const me = startPage();
const filter = section("rec-filter");
const list = section("rec-list");
const player = section("rec-player");
let playing = null; // the blob: URL in the player, freed when another one is played

const inputs = {
  customer: el("input", { attrs: { id: "rec-customer", size: 12 } }),
  from: el("input", { attrs: { id: "rec-from", type: "datetime-local", step: 1 } }),
  to: el("input", { attrs: { id: "rec-to", type: "datetime-local", step: 1 } }),
};
if (me.role === "customer") {
  inputs.customer.value = me.customer;
  inputs.customer.disabled = true;
}

function button(text, attrs, run, className = "secondary") {
  const node = el("button", { text, className, attrs: { type: "button", ...attrs } });
  node.addEventListener("click", () => run().catch(() => {}));
  return node;
}

async function play(recording) {
  const url = await blobUrl("/api/recordings/" + encodeURIComponent(recording.id), "audio/wav");
  if (playing) URL.revokeObjectURL(playing);
  playing = url;
  const audio = el("audio", { attrs: { id: "rec-audio", controls: true, src: url } });
  const call = recording.call_id ? " (call " + recording.call_id + ")" : "";
  player.fill(el("p", { text: "Playing " + recording.id + call }), audio);
  await audio.play().catch(() => {}); // a browser may want a gesture first: the controls are there
}

async function remove(recording) {
  // A deleted recording cannot be had back: the person says so first.
  if (!confirm("Delete the recording " + recording.id + "? It cannot be restored.")) return;
  await api("/api/recordings/" + encodeURIComponent(recording.id), { method: "DELETE" });
  await load();
}

async function load() {
  const query = new URLSearchParams();
  for (const [name, input] of Object.entries(inputs)) {
    if (name === "customer" && me.role === "customer") continue;
    if (input.value.trim()) query.set(name, input.value.trim());
  }
  const data = await api("/api/recordings" + (query.size ? "?" + query : ""));
  list.fill(table([
    { title: "Start (UTC)", value: (r) => r.start || r.day },
    { title: "Customer", value: (r) => r.customer },
    { title: "Call", value: (r) => r.call_id },
    { title: "Length", value: (r) => (r.seconds === undefined ? null : seconds(r.seconds)), className: "num" },
    { title: "Size (kB)", value: (r) => Math.round(r.bytes / 1024), className: "num" },
    { title: "", value: (r) => button("Play", { "data-play": r.id }, () => play(r)) },
    { title: "", value: (r) => button("Delete", { "data-delete": r.id }, () => remove(r), "danger") },
  ], data.recordings, { empty: "no recording", rowAttrs: (r) => ({ "data-recording": r.id }) }));
}

const form = el("form", { attrs: { id: "rec-form" } },
  el("label", {}, "Customer", inputs.customer), el("label", {}, "From (UTC)", inputs.from),
  el("label", {}, "To (UTC)", inputs.to), el("button", { text: "Show", attrs: { type: "submit" } }));
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load().catch(() => {});
});
filter.fill(form);
load().catch(() => {});
