// Recordings: the calls recorded (GET /api/recordings, by customer and period, a page of them
// newest first), each played in the page (the WAV fetched with the token, handed to <audio> as
// a blob: URL) or deleted.
import { api, blobUrl, el, seconds, section, startPage, table } from "./api.js";

const me = startPage();
const filter = section("rec-filter");
const list = section("rec-list");
const player = section("rec-player");
const PAGE = 100;
let playing = null; // the blob: URL in the player, freed when another one is played
let shown = 0; // the offset of the page shown: a delete draws the same page again

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
  await load(shown);
}

async function load(offset = 0) {
  const query = new URLSearchParams();
  for (const [name, input] of Object.entries(inputs)) {
    if (name === "customer" && me.role === "customer") continue;
    if (input.value.trim()) query.set(name, input.value.trim());
  }
  query.set("limit", PAGE);
  query.set("offset", offset);
  const data = await api("/api/recordings?" + query);
  if (offset > 0 && data.recordings.length === 0 && data.total > 0) {
    return load(Math.max(0, data.total - PAGE)); // the last page emptied by a delete
  }
  shown = offset;
  const last = Math.min(offset + data.recordings.length, data.total);
  const pager = el("p", { attrs: { id: "rec-total" } },
    data.total === 0 ? "no recording" : "recordings " + (offset + 1) + " to " + last + " of " + data.total);
  const step = (to) => () => load(to);
  if (offset > 0) pager.append(" ", button("Previous", { "data-page": "previous" }, step(Math.max(0, offset - PAGE))));
  if (last < data.total) pager.append(" ", button("Next", { "data-page": "next" }, step(offset + PAGE)));
  list.fill(pager, table([
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
