// CDR search: the records of a period, customer, number and status (GET /api/cdrs, 100 a
// page), and the same selection downloaded as CSV or JSON lines (GET /api/cdrs/export).
import { api, download, el, section, startPage, table } from "./api.js";

const me = startPage();
const PAGE = 100;
const form = section("cdr-form");
const results = section("cdr-results");
const STATUSES = ["", "ANSWERED", "NO_ANSWER", "BUSY", "FAILED", "REJECTED", "CANCELLED"];

function field(label, input) {
  return el("label", {}, label, input);
}

const inputs = {
  from: el("input", { attrs: { id: "cdr-from", name: "from", type: "datetime-local", step: 1 } }),
  to: el("input", { attrs: { id: "cdr-to", name: "to", type: "datetime-local", step: 1 } }),
  customer: el("input", { attrs: { id: "cdr-customer", name: "customer", size: 12 } }),
  number: el("input", { attrs: { id: "cdr-number", name: "number", size: 16, placeholder: "caller or called" } }),
  status: el("select", { attrs: { id: "cdr-status", name: "status" } },
    ...STATUSES.map((s) => el("option", { text: s || "any", attrs: { value: s } }))),
};
if (me.role === "customer") {
  inputs.customer.value = me.customer;
  inputs.customer.disabled = true;
}

// The selection as query parameters: empty fields are left out (the API refuses empty ones).
function selection() {
  const query = new URLSearchParams();
  for (const [name, input] of Object.entries(inputs)) {
    if (name === "customer" && me.role === "customer") continue;
    if (input.value.trim()) query.set(name, input.value.trim());
  }
  return query;
}

const COLUMNS = [
  { title: "Start (UTC)", value: (r) => r.start_stamp },
  { title: "Caller", value: (r) => r.caller_e164 || r.caller_raw },
  { title: "Called", value: (r) => r.called_e164 || r.called_raw },
  { title: "Customer", value: (r) => r.customer },
  { title: "Trunk", value: (r) => r.trunk },
  { title: "Status", value: (r) => r.disposition },
  { title: "Seconds", value: (r) => r.billsec, className: "num" },
  { title: "Hung up by", value: (r) => r.hangup_by },
  { title: "Cost", value: (r) => (r.cost === null || r.cost === undefined ? null : r.cost + " " + (r.currency || "")), className: "num" },
];

async function search(offset = 0) {
  const query = selection();
  query.set("limit", PAGE);
  query.set("offset", offset);
  const data = await api("/api/cdrs?" + query);
  const last = Math.min(offset + data.cdrs.length, data.total);
  const pager = el("p", { attrs: { id: "cdr-total" } },
    data.total === 0 ? "no record found" : "records " + (offset + 1) + " to " + last + " of " + data.total);
  if (offset > 0) pager.append(" ", button("Previous", () => search(Math.max(0, offset - PAGE)).catch(() => {}), "secondary"));
  if (last < data.total) pager.append(" ", button("Next", () => search(offset + PAGE).catch(() => {}), "secondary"));
  results.fill(pager, table(COLUMNS, data.cdrs, { empty: "no record found", rowAttrs: (r) => ({ "data-call-id": r.call_id, "data-uuid": r.uuid }) }));
}

function button(text, action, className = "", id = undefined) {
  const node = el("button", { text, className, attrs: { type: "button", id } });
  node.addEventListener("click", action);
  return node;
}

function exportAs(format) {
  const query = selection();
  query.set("format", format);
  return download("/api/cdrs/export?" + query, "cdrs." + (format === "csv" ? "csv" : "jsonl"));
}

const searchForm = el("form", { attrs: { id: "cdr-search" } },
  field("From (UTC)", inputs.from), field("To (UTC)", inputs.to), field("Customer", inputs.customer),
  field("Number", inputs.number), field("Status", inputs.status),
  el("button", { text: "Search", attrs: { type: "submit", id: "cdr-search-button" } }),
  button("Download CSV", () => exportAs("csv").catch(() => {}), "secondary", "cdr-csv"),
  button("Download JSONL", () => exportAs("jsonl").catch(() => {}), "secondary", "cdr-jsonl"));
searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  search(0).catch(() => {});
});
form.fill(searchForm);
