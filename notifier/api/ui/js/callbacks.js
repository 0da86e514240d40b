// The Callbacks view: each callback's backlog (links to its pending and dead
// deliveries), whether its lane runs, and its recent record.

import { get } from "./api.js";
import { $, badge, el, setBadge, setText, syncRows, tableRow } from "./format.js";

const COLUMNS = ["name", "target", "state", "pending", "dead", "failures", "error"];
const rowParts = new WeakMap();

function render(callbacks) {
  const tbody = $("callbacks-table").tBodies[0];
  syncRows(tbody, callbacks, (c) => c.name, createRow, updateRow);
  $("callbacks-empty").hidden = callbacks.length > 0;
}

function createRow() {
  const { row, cells } = tableRow(rowParts, COLUMNS);
  cells.pendingLink = el("a");
  cells.pending.append(cells.pendingLink);
  cells.deadLink = el("a");
  cells.dead.append(cells.deadLink);
  cells.stateBadge = badge("");
  cells.state.append(cells.stateBadge);
  return row;
}

function updateRow(row, callback) {
  const cells = rowParts.get(row);
  const classes = ["callback"];
  if (callback.paused) classes.push("paused");
  if (callback.dead > 0 || callback.consecutive_failures > 0) classes.push("unhealthy");
  row.className = classes.join(" ");
  setText(cells.name, callback.name);
  setText(cells.target, [callback.type, callback.target].filter(Boolean).join(" → ") || "—");
  const filter = (state) =>
    `#/deliveries?${new URLSearchParams({ state, callback: callback.name })}`;
  cells.pendingLink.href = filter("pending");
  setText(cells.pendingLink, callback.pending);
  cells.deadLink.href = filter("dead");
  setText(cells.deadLink, callback.dead);
  setBadge(cells.stateBadge, callback.paused ? "paused" : "running");
  cells.stateBadge.title = callback.paused
    ? "Paused after failures in a row: one probe at a time until one succeeds; nothing is lost"
    : "Its lane sends as deliveries come due";
  setText(cells.failures, callback.consecutive_failures);
  setText(cells.error, callback.last_error || "");
}

export default {
  name: "callbacks",
  title: "Callbacks",
  live: true,
  async load() {
    const { callbacks } = await get("callbacks");
    return () => render(callbacks);
  },
  reset() {
    $("callbacks-table").tBodies[0].replaceChildren();
  },
};
