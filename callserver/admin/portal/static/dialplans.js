// The dialplan editor: the dialplans the token may see (GET /api/dialplans), one opened in a
// text area with line numbers (or a new one for a number that has none, or a file loaded from
// the computer), checked by the server's loader (POST .../validate) and uploaded (PUT). Each
// error is marked in the gutter at its line, its message beside the line; warnings are listed.
import { ApiError, api, el, section, showError, startPage, table } from "./api.js";

startPage();
const list = section("dp-list", "Dialplans");
const creating = section("dp-new", "New dialplan");
const editor = section("dp-editor");
const STARTER = "steps:\n  welcome:\n    play: greeting\n";
const LINE = 18; // px, as .editor's line-height in portal.css

const gutter = el("div", { className: "gutter", attrs: { id: "dp-gutter", "aria-hidden": "true" } });
const text = el("textarea", { attrs: { id: "dp-text", spellcheck: "false", wrap: "off", "aria-label": "dialplan text" } });
const messages = el("div", { className: "messages", attrs: { id: "dp-messages" } });
const status = el("p", { attrs: { id: "dp-status", role: "status" } });
const problems = el("ul", { className: "errors", attrs: { id: "dp-errors" } });
let current = null; // {name, file, version}
let marked = new Map(); // line -> [messages]

function lineCount() {
  return text.value.split("\n").length;
}

// The gutter and the message column: one row per line (and a few more, so they scroll as far
// as the text area does); an error's line is marked and carries its messages.
function drawLines() {
  const rows = lineCount() + 3;
  const numbers = [];
  const notes = [];
  for (let n = 1; n <= rows; n++) {
    const said = marked.get(n);
    const number = el("div", { text: n <= rows - 3 ? n : "", attrs: { "data-line": n } });
    const note = el("div", { text: said ? said.join("; ") : "", attrs: { "data-line": n } });
    if (said) {
      number.className = "error";
      note.className = "error";
      number.title = note.title = said.join("\n");
    }
    numbers.push(number);
    notes.push(note);
  }
  gutter.replaceChildren(...numbers);
  messages.replaceChildren(...notes);
  followScroll();
}

function followScroll() {
  gutter.scrollTop = text.scrollTop;
  messages.scrollTop = text.scrollTop;
}

function goToLine(line) {
  const lines = text.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0);
  text.focus();
  text.setSelectionRange(start, start + (lines[line - 1] || "").length);
  text.scrollTop = Math.max(0, (line - 3) * LINE);
  followScroll();
}

function showWarnings(warnings) {
  for (const w of warnings) {
    const where = w.file + (w.line ? ":" + w.line : "");
    problems.append(el("li", { className: "warning", attrs: { "data-line": w.line } },
      el("code", { text: where }), " warning: ", (w.field ? w.field + ": " : "") + w.message));
  }
}

function showErrors(errors) {
  marked = new Map();
  for (const e of errors) {
    if (e.line === null || e.line === undefined) continue;
    const said = marked.get(e.line) || [];
    said.push((e.field ? e.field + ": " : "") + e.message);
    marked.set(e.line, said);
  }
  problems.replaceChildren(...errors.map((e) => {
    const where = e.file + (e.line ? ":" + e.line : "");
    const item = el("li", { attrs: { "data-line": e.line } },
      el("code", { text: where }), " ", (e.field ? e.field + ": " : "") + e.message);
    if (e.line) {
      const link = el("a", { text: "show", attrs: { href: "#dp-text" } });
      link.addEventListener("click", (event) => {
        event.preventDefault();
        goToLine(e.line);
      });
      item.append(" ", link);
    }
    return item;
  }));
  drawLines();
}

function say(message, ok) {
  status.textContent = message;
  status.className = ok ? "notice" : "errors";
}

async function validate() {
  const verdict = await api("/api/dialplans/" + encodeURIComponent(current.name) + "/validate", {
    method: "POST",
    body: { text: text.value },
  });
  showErrors(verdict.errors);
  showWarnings(verdict.warnings || []);
  say(verdict.valid ? "Valid: nothing to fix (not uploaded yet)." : verdict.errors.length + " error(s): see the marked lines.", verdict.valid);
}

async function upload() {
  try {
    const done = await api("/api/dialplans/" + encodeURIComponent(current.name), {
      method: "PUT",
      body: { text: text.value },
    });
    showErrors([]);
    current.version = done.version;
    say("Uploaded: version " + done.version + " is in force" + (done.previous ? "; the previous file is kept as " + done.previous : "") + ".", true);
    await loadList();
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) showErrors(err.data.errors || []);
    say(err instanceof ApiError ? err.message : String(err), false);
  }
}

function action(label, id, run, className = "") {
  const button = el("button", { text: label, className, attrs: { type: "button", id } });
  button.addEventListener("click", () => run().catch(() => {}));
  return button;
}

// A file from the computer replaces the text (nothing is sent until Validate or Upload).
function fileLoader() {
  const input = el("input", { attrs: { type: "file", id: "dp-file", accept: ".yaml,.yml,text/yaml,text/plain" } });
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    text.value = await file.text();
    marked = new Map();
    problems.replaceChildren();
    say("Loaded " + file.name + ": validate or upload it.", true);
    drawLines();
  });
  return el("label", { attrs: { for: "dp-file" } }, "Load a file: ", input);
}

function show(plan) {
  current = { name: plan.name, file: plan.file, version: plan.version };
  text.value = plan.text;
  marked = new Map();
  problems.replaceChildren();
  say("", true);
  editor.fill(
    el("h2", { text: plan.name, attrs: { id: "dp-name" } }),
    el("p", { className: "hint", text: (plan.file || "a new file") + " · version in force: " + (plan.version || "none") }),
    el("p", {}, fileLoader()),
    el("div", { className: "editor" }, gutter, text, messages),
    el("p", {}, action("Validate", "dp-validate", validate, "secondary"), " ", action("Upload", "dp-upload", upload)),
    status,
    problems,
  );
  drawLines();
}

async function open(name) {
  show(await api("/api/dialplans/" + encodeURIComponent(name)));
}

// The form for a dialplan of a number that has none yet: its E.164 digits (or "default").
function newForm() {
  const number = el("input", { attrs: { id: "dp-new-name", size: "16", placeholder: "38733100200", "aria-label": "number of the new dialplan" } });
  const start = () => {
    const name = number.value.trim().replace(/^\+/, "");
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      showError("A new dialplan is named by its number's digits (38733100200) or default.");
      return;
    }
    show({ name, file: null, version: null, text: STARTER });
  };
  const button = el("button", { text: "New", className: "secondary", attrs: { type: "button", id: "dp-new-open" } });
  button.addEventListener("click", start);
  creating.fill(el("p", {}, el("label", { attrs: { for: "dp-new-name" } }, "Number: "), number, " ", button));
}

async function loadList() {
  const data = await api("/api/dialplans");
  const openButton = (plan) => {
    const button = el("button", { text: "Open", className: "secondary", attrs: { type: "button", "data-open": plan.name } });
    button.addEventListener("click", () => open(plan.name).catch(() => {}));
    return button;
  };
  list.fill(table([
    { title: "Name", value: (p) => p.name },
    { title: "Customer", value: (p) => p.customer || "operator" },
    { title: "Version in force", value: (p) => p.version },
    { title: "Modified (UTC)", value: (p) => p.modified },
    { title: "", value: openButton },
  ], data.dialplans, { empty: "no dialplan", rowAttrs: (p) => ({ "data-dialplan": p.name }) }));
}

text.addEventListener("input", drawLines);
text.addEventListener("scroll", followScroll);
text.addEventListener("keydown", (event) => {
  if (event.key === "Tab") { // indent with two spaces (YAML takes no tabs)
    event.preventDefault();
    text.setRangeText("  ", text.selectionStart, text.selectionEnd, "end");
    drawLines();
  }
});
newForm();
loadList().catch(() => {});
