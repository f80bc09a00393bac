// The portal's one way to the admin API: the token from sessionStorage as a bearer token,
// JSON in and out, every error's message shown to the person in the banner. Also the small
// DOM helpers every page uses: values only ever go into the page as text (textContent).

const TOKEN = "callserver.token";
const WHO = "callserver.who";

export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function who() {
  const text = sessionStorage.getItem(WHO);
  return text ? JSON.parse(text) : null;
}

export function saveSession(bearer, whoami) {
  sessionStorage.setItem(TOKEN, bearer);
  sessionStorage.setItem(WHO, JSON.stringify(whoami));
}

export function clearSession() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(WHO);
}

function loginAgain() {
  clearSession();
  const here = location.pathname + location.search;
  location.assign("/portal/?next=" + encodeURIComponent(here));
}

async function send(path, options = {}, bearer = token()) {
  const headers = { Accept: options.accept || "application/json" };
  if (bearer) headers.Authorization = "Bearer " + bearer;
  let body;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, { method: options.method || "GET", headers, body });
  } catch (err) {
    throw new ApiError(0, "the server did not answer (" + err.message + "): is it running?");
  }
  if (response.ok) return response;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  const message = data && data.error ? data.error : response.status + " " + response.statusText;
  throw new ApiError(response.status, message, data);
}

// Sends a request; answers its JSON. An error is shown in the banner and thrown (ApiError),
// unless options.quiet; a 401 sends the person to the login page (unless options.bearer).
// A request's success clears only the error the same request (method and path) showed: a
// poll's next answer must not hide a failed action's error before the person has read it.
export async function api(path, options = {}) {
  const source = requestKey(options.method, path);
  try {
    const response = await send(path, options, options.bearer || token());
    clearError(source);
    return response.status === 204 ? null : await response.json();
  } catch (err) {
    if (err.status === 401 && !options.bearer) loginAgain();
    if (!options.quiet) showError(err.message, source);
    throw err;
  }
}

// What a request is, for the banner: its method and path without the query.
function requestKey(method, path) {
  return (method || "GET") + " " + String(path).split("?")[0];
}

// A file of the API (a CSV, a recording) fetched with the token, as a blob: URL.
export async function blobUrl(path, accept = "*/*") {
  const source = requestKey("GET", path);
  try {
    const response = await send(path, { accept });
    clearError(source);
    return URL.createObjectURL(await response.blob());
  } catch (err) {
    if (err.status === 401) loginAgain();
    showError(err.message, source);
    throw err;
  }
}

// Fetches path with the token and hands it to the browser as a download named filename.
export async function download(path, filename) {
  const url = await blobUrl(path);
  const link = el("a", { attrs: { href: url, download: filename } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Shows message in the banner until it is closed, or (with source) until the request source
// succeeds (see api).
export function showError(message, source = "") {
  const banner = document.getElementById("banner");
  banner.replaceChildren(el("span", { text: message }));
  const close = el("button", { text: "×", attrs: { type: "button", "aria-label": "close" } });
  close.addEventListener("click", () => clearError());
  banner.append(close);
  banner.dataset.source = source;
  banner.hidden = false;
}

// Hides the banner: any error, or (with source) only the error that request showed.
export function clearError(source = undefined) {
  const banner = document.getElementById("banner");
  if (!banner || (source !== undefined && banner.dataset.source !== source)) return;
  banner.hidden = true;
  banner.replaceChildren();
  delete banner.dataset.source;
}

// An element: props.text is its text, props.className its class, props.attrs attributes
// (names chosen by the page, values set as strings), children are nodes or text.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  if (props.className) node.className = props.className;
  for (const [name, value] of Object.entries(props.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// A table: columns are [{title, value: row => text or node, className}], one row per item;
// options.empty is the text of an empty table, options.rowAttrs(row) a row's attributes.
export function table(columns, rows, options = {}) {
  const empty = options.empty || "nothing to show";
  const head = el("tr", {}, ...columns.map((c) => el("th", { text: c.title })));
  const body = rows.map((row) =>
    el("tr", { attrs: options.rowAttrs ? options.rowAttrs(row) : {} },
      ...columns.map((c) => el("td", { className: c.className }, cell(c.value(row))))),
  );
  if (rows.length === 0) {
    body.push(el("tr", {}, el("td", { text: empty, className: "empty", attrs: { colspan: columns.length } })));
  }
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...body));
}

function cell(value) {
  if (value instanceof Node) return value;
  return document.createTextNode(value === null || value === undefined ? "–" : String(value));
}

// The page's part of <main>: made once, emptied on each refresh.
export function section(id, title) {
  let node = document.getElementById(id);
  if (!node) {
    node = el("section", { attrs: { id } });
    document.getElementById("main").append(node);
  }
  const children = title ? [el("h2", { text: title })] : [];
  return { node, fill: (...parts) => node.replaceChildren(...children, ...parts) };
}

// Calls fn now and every ms milliseconds after it finished (errors are in the banner); while
// the tab is hidden it asks nothing, and asks at once when the tab is shown again.
export function poll(fn, ms) {
  let timer = null;
  let running = false;
  const run = async () => {
    timer = null;
    if (document.hidden || running) return;
    running = true;
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) showError(String(err));
    } finally {
      running = false;
    }
    timer = setTimeout(run, ms);
  };
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    if (timer !== null) clearTimeout(timer);
    run();
  });
  run();
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  const total = Math.round(Number(value));
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, "0");
  return m >= 60 ? Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") + ":" + s : m + ":" + s;
}

// The time of day of a UTC ISO 8601 stamp, as the API gives it ("2026-12-07T21:38:31.2Z").
export function clock(stamp) {
  return stamp ? String(stamp).slice(11, 19) : "–";
}

export function percent(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(1) + " %";
}

// Starts a page that needs a login: without a token, the login page; else who is logged in
// in the header and the log-out button. Answers the token's {name, role, customer}.
export function startPage() {
  const me = who();
  if (!token() || !me) {
    loginAgain();
    throw new Error("not logged in");
  }
  const label = me.role === "operator" ? me.name + " (operator)" : me.name + " (customer " + me.customer + ")";
  document.getElementById("who").textContent = label;
  const button = document.getElementById("logout");
  button.hidden = false;
  button.addEventListener("click", () => {
    clearSession();
    location.assign("/portal/");
  });
  return me;
}
