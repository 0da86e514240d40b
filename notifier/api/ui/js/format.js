// Small DOM and formatting helpers shared by every view.
//
// Every value from the API reaches the page through textContent, attribute setters or
// <option> values, never through HTML parsing (no innerHTML).

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function cssToken(value) {
  // A CSS class fragment from a value the API controls.
  return String(value).toLowerCase().replace(/[^a-z0-9_-]/g, "");
}

export function dash(value) {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function relative(iso) {
  if (!iso) return "—";
  const when = Date.parse(iso);
  if (Number.isNaN(when)) return String(iso);
  const seconds = (when - Date.now()) / 1000;
  if (Math.abs(seconds) < 1) return "now";
  return seconds < 0 ? `${span(seconds)} ago` : `in ${span(seconds)}`;
}

export function clock(iso) {
  const when = Date.parse(iso);
  return Number.isNaN(when) ? String(iso) : new Date(when).toLocaleString();
}

export function timeText(node, iso, prefix = "") {
  setText(node, iso ? prefix + relative(iso) : "—");
  node.title = iso ? clock(iso) : "";
}

export function when(iso, absolute = false) {
  // Relative ("5s ago") where the view is rebuilt every refresh, else the local time.
  const node = el("span");
  timeText(node, iso);
  if (absolute && iso) {
    node.title = relative(iso);
    setText(node, clock(iso));
  }
  return node;
}

export function eta(job) {
  const value = job.eta;
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "number") return `in ${span(value)}`;
  return Number.isNaN(Date.parse(value)) ? String(value) : relative(value);
}

function percent(progress) {
  if (typeof progress !== "number" || !Number.isFinite(progress)) return null;
  return Math.max(0, Math.min(100, Math.round(progress)));
}

export function progressBar() {
  const wrap = el("span", "progress");
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.setAttribute("aria-label", "Progress");
  const label = el("span", "pct");
  wrap.append(bar, label);
  return { wrap, bar, label };
}

export function setProgress(parts, progress) {
  const pct = percent(progress);
  parts.bar.hidden = pct === null;
  // The attribute, not .value: a bar without one is indeterminate yet reads 0.
  if (pct !== null && parts.bar.getAttribute("value") !== String(pct)) parts.bar.value = pct;
  setText(parts.label, pct === null ? "—" : `${pct}%`);
}

export function badge(text) {
  return el("span", `badge state-${cssToken(text)}`, text);
}

export function setBadge(node, text) {
  node.className = `badge state-${cssToken(text)}`;
  setText(node, text);
}

export function jobHref(id) {
  return `#/job/${encodeURIComponent(id)}`;
}

export function groupHref(group) {
  return `#/jobs?${new URLSearchParams({ group })}`;
}

// A job's deadline, relative ("in 2h"), marked once it is at risk or late (issue 21).
export function deadlineText(node, job) {
  const mark = job.late_at ? "late" : job.at_risk_at ? "at risk" : "";
  node.classList.toggle("late", Boolean(mark));
  setText(node, job.deadline ? relative(job.deadline) + (mark ? ` · ${mark}` : "") : "—");
  node.title = job.deadline ? clock(job.deadline) : "";
  return node;
}

export function field(list, term, value) {
  const dt = el("dt", "", term);
  const dd = el("dd");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = dash(value);
  list.append(dt, dd);
  return dd;
}

// Keyed rows: existing rows are updated in place (focus, hover and the progress bars
// survive each refresh), new ones created, missing ones removed, order followed.
export function syncRows(tbody, items, keyOf, create, update) {
  const existing = new Map();
  for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let row = existing.get(key);
    if (row) existing.delete(key);
    else {
      row = create();
      row.dataset.key = key;
    }
    update(row, item);
    const wanted = previous ? previous.nextSibling : tbody.firstChild;
    if (wanted !== row) tbody.insertBefore(row, wanted);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

// Table rows with one cell per column (class col-<name>); a row's parts, by row.
export function tableRow(parts, columns) {
  const row = document.createElement("tr");
  const cells = {};
  for (const name of columns) {
    cells[name] = row.insertCell();
    cells[name].className = `col-${name}`;
  }
  parts.set(row, cells);
  return { row, cells };
}

// A job's outcome at a glance: what its state badge says and how it is coloured. A done
// job is "delivered" or "failed" (Datasaur's status), never one green "done" for both.
function outcome(job) {
  if (job.state !== "done") return job.state;
  if (job.status === "DELIVERED") return "delivered";
  if (job.status === "FAILED") return "failed";
  return "done";
}

export function outcomeBadge(node, job) {
  setBadge(node, outcome(job));
  node.title = `state ${job.state}, Datasaur status ${job.status || "unknown"}`;
}

// Datasaur's errors, each by its stack's first line (with its id: the long form), then
// the last poll's own error.
export function errorSummary(job, withIds = false) {
  const parts = (job.errors || []).map((error) => {
    const first = String(error.stack || "").trim().split("\n")[0].trim();
    return [withIds ? error.id : "", first].filter(Boolean).join(": ") || error.id;
  });
  if (job.last_error) parts.push(job.last_error);
  return parts.join("; ");
}
