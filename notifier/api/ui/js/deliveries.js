// The Deliveries view: the outbox, filtered by state and callback (on the server), kept
// live; dead and delivered ones can be sent again, one by one or those selected (asked
// first when more than one).

import { get, getAll } from "./api.js";
import { ask } from "./confirm.js";
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
import { redeliver, redeliverable, redeliverButton, updateRedeliver } from "./redeliver.js";
import { app, canWrite, readOnlyReason } from "./session.js";

const COLUMNS = ["id", "job", "callback", "event", "state", "attempts", "created", "next"];
const rowParts = new WeakMap();
let deliveries = null;
let callbacks = []; // the last list read, for the Callback filter's options
const selected = new Set(); // ids of the deliveries ticked for "Redeliver selected"

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
  const choosable = new Set(items.filter(redeliverable).map((d) => d.id));
  for (const id of Array.from(selected)) if (!choosable.has(id)) selected.delete(id);
  syncRows($("deliveries-table").tBodies[0], items, (d) => d.id, createRow, updateRow);
  updateBulk(choosable);
  $("deliveries-empty").hidden = items.length > 0;
  let meta = `${items.length} deliveries`;
  if (deliveries.truncated) meta += ` (the newest ${items.length} only)`;
  setText($("deliveries-meta"), meta);
}

function createRow() {
  const { row, cells } = tableRow(rowParts, ["select", ...COLUMNS, "error", "action"]);
  cells.box = el("input");
  cells.box.type = "checkbox";
  cells.box.addEventListener("change", () => {
    const id = row.dataset.key;
    if (cells.box.checked) selected.add(id);
    else selected.delete(id);
    render();
  });
  cells.select.append(cells.box);
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
  cells.box.hidden = !redeliverable(delivery);
  cells.box.checked = selected.has(delivery.id);
  cells.box.disabled = !canWrite();
  cells.box.setAttribute("aria-label", `Select ${delivery.id}`);
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

function updateBulk(choosable) {
  const button = $("deliveries-redeliver");
  const count = selected.size;
  setText(button, count ? `Redeliver ${count} selected` : "Redeliver selected");
  button.disabled = !canWrite() || count === 0;
  button.title = canWrite()
    ? "Send the ticked deliveries again, each under its webhook-id"
    : readOnlyReason("redelivering");
  const all = $("deliveries-all");
  all.disabled = !canWrite() || choosable.size === 0;
  all.checked = choosable.size > 0 && count === choosable.size;
  all.indeterminate = count > 0 && count < choosable.size;
}

function selectAll() {
  if (!deliveries) return;
  const choosable = deliveries.items.filter(redeliverable).map((d) => d.id);
  const every = choosable.length > 0 && choosable.every((id) => selected.has(id));
  selected.clear();
  if (!every) for (const id of choosable) selected.add(id);
  render();
}

async function redeliverSelected() {
  const ids = Array.from(selected);
  if (!ids.length || !canWrite()) return;
  if (ids.length > 1) {
    const message =
      `Send ${ids.length} deliveries again? Each goes to its callback once more, ` +
      "under the same webhook-id.";
    if (!(await ask(message, `Redeliver ${ids.length}`))) return;
  }
  $("deliveries-redeliver").disabled = true;
  if (await redeliver(ids)) selected.clear();
  render();
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
        selected.clear();
        app.refresh();
      });
    }
    document.addEventListener("delivery", (event) => patch(event.detail));
    $("deliveries-all").addEventListener("change", selectAll);
    $("deliveries-redeliver").addEventListener("click", redeliverSelected);
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
    selected.clear();
    $("deliveries-table").tBodies[0].replaceChildren();
  },
};
