// The Deliveries view: the outbox, filtered by state and callback (on the server), kept
// live; dead and delivered ones can be sent again.

import { get, getAll } from "./api.js";
import {
  $,
  badge,
  cssToken,
  el,
  jobHref,
  setBadge,
  setText,
  syncRows,
  tableRow,
  timeText,
} from "./format.js";
import { redeliverButton, updateRedeliver } from "./redeliver.js";
import { app } from "./session.js";

const COLUMNS = ["id", "job", "callback", "event", "state", "attempts", "created", "next"];
const rowParts = new WeakMap();
let deliveries = null;
let callbacks = []; // the last list read, for the Callback filter's options

function setCallbackOptions(selected) {
  const select = $("deliveries-callback");
  const names = callbacks.map((c) => c.name);
  if (selected && !names.includes(selected)) names.push(selected);
  const current = Array.from(select.options)
    .slice(1)
    .map((option) => option.value);
  if (current.join("\n") !== names.join("\n")) {
    const options = names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      return option;
    });
    select.replaceChildren(select.options[0], ...options);
  }
  select.value = selected;
}

function render() {
  if (!deliveries) return;
  const items = deliveries.items;
  syncRows($("deliveries-table").tBodies[0], items, (d) => d.id, createRow, updateRow);
  $("deliveries-empty").hidden = items.length > 0;
  let meta = `${items.length} deliveries`;
  if (deliveries.truncated) meta += ` (the newest ${items.length} only)`;
  setText($("deliveries-meta"), meta);
}

function createRow() {
  const { row, cells } = tableRow(rowParts, [...COLUMNS, "error", "action"]);
  cells.code = el("code", "id");
  cells.id.append(cells.code);
  cells.badge = badge("");
  cells.state.append(cells.badge);
  cells.button = redeliverButton();
  cells.action.append(cells.button);
  return row;
}

function updateRow(row, delivery) {
  const cells = rowParts.get(row);
  row.className = `delivery state-${cssToken(delivery.state)}`;
  setText(cells.code, delivery.id);
  if (delivery.job_id === null) setText(cells.job, "—");
  else {
    let link = cells.job.firstElementChild;
    if (!link) {
      link = el("a", "id");
      cells.job.replaceChildren(link);
    }
    link.href = jobHref(delivery.job_id);
    setText(link, delivery.job_id);
  }
  setText(cells.callback, delivery.callback);
  setText(cells.event, delivery.event);
  setBadge(cells.badge, delivery.state);
  setText(cells.attempts, delivery.attempts);
  timeText(cells.created, delivery.created_at);
  if (delivery.delivered_at) timeText(cells.next, delivery.delivered_at);
  else if (delivery.next_attempt_at) timeText(cells.next, delivery.next_attempt_at, "next ");
  else timeText(cells.next, null);
  setText(cells.error, delivery.last_error || "");
  updateRedeliver(cells.button, delivery);
}

function patch(delivery) {
  // Show a redelivery's answer at once; the next refresh follows it from there.
  if (!deliveries) return;
  const { history: _history, ...row } = delivery;
  deliveries.items = deliveries.items.map((d) => (d.id === row.id ? row : d));
  render();
}

export default {
  name: "deliveries",
  title: "Deliveries",
  live: true,
  keepsFilters: true,
  start() {
    $("deliveries-filters").addEventListener("submit", (event) => event.preventDefault());
    for (const id of ["deliveries-state", "deliveries-callback"]) {
      $(id).addEventListener("change", () => {
        const state = $("deliveries-state").value;
        const callback = $("deliveries-callback").value;
        app.keepFilters("deliveries", new URLSearchParams({ state, callback }));
        $("deliveries-table").tBodies[0].replaceChildren();
        app.refresh();
      });
    }
    document.addEventListener("delivery", (event) => patch(event.detail));
  },
  enter({ params }) {
    $("deliveries-state").value = params.get("state") || "";
    setCallbackOptions(params.get("callback") || "");
  },
  async load() {
    const params = {};
    if ($("deliveries-state").value) params.state = $("deliveries-state").value;
    if ($("deliveries-callback").value) params.callback = $("deliveries-callback").value;
    const [found, listed] = await Promise.all([
      getAll("deliveries", "deliveries", params),
      get("callbacks"),
    ]);
    return () => {
      callbacks = listed.callbacks;
      setCallbackOptions($("deliveries-callback").value);
      deliveries = found;
      render();
    };
  },
  reset() {
    deliveries = null;
    callbacks = [];
    $("deliveries-table").tBodies[0].replaceChildren();
  },
};
