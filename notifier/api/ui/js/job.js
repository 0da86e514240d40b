// One job's view: its fields, and each delivery made for it with every attempt.

import { ApiError, call, get } from "./api.js";
import {
  $,
  badge,
  clock,
  cssToken,
  deadlineText,
  el,
  eta,
  field,
  groupHref,
  outcomeBadge,
  progressBar,
  relative,
  setProgress,
  setText,
  when,
} from "./format.js";
import { inFlight, redeliverButton, updateRedeliver } from "./redeliver.js";
import { failure, notice } from "./notice.js";
import { canWrite, readOnlyReason, session } from "./session.js";

let job = null;

function render() {
  setText($("job-title"), job.name || job.id);
  setText($("job-id"), job.id);
  const fields = document.createElement("dl");
  const bar = progressBar();
  setProgress(bar, job.progress);
  const state = badge("");
  outcomeBadge(state, job);
  field(fields, "State", state);
  field(fields, "Status", job.status);
  field(fields, "Progress", bar.wrap);
  field(fields, "ETA", eta(job));
  field(fields, "Last polled", when(job.last_polled_at));
  field(fields, "Next poll", when(job.next_poll_at));
  field(fields, "Last error", job.last_error);
  if (job.group) {
    const link = el("a", "group", job.group);
    link.href = groupHref(job.group);
    field(fields, "Group", link);
  }
  if (job.deadline) field(fields, "Deadline", deadlineText(el("span"), job));
  field(fields, "Labels", labelList(job.labels || {}));
  if (Object.keys(job.metadata || {}).length) {
    field(fields, "Metadata", el("pre", "metadata", JSON.stringify(job.metadata, null, 2)));
  }
  if (job.expire_after !== null && job.expire_after !== undefined) {
    field(fields, "Expires after", `${job.expire_after} s`);
  }
  if (job.stall_after !== null && job.stall_after !== undefined) {
    field(fields, "Stalled after", `${job.stall_after} s`);
  }
  field(fields, "Notifies", job.notify ? job.notify.join(", ") : "every callback (or routes)");
  field(fields, "On status", (job.on_status || []).join(", "));
  if (job.callback_url) field(fields, "Callback URL", job.callback_url);
  field(fields, "Source", job.source);
  if (job.owner) field(fields, "Polled by", job.owner);
  if (job.ack) {
    const by = `${job.ack.by}, ${relative(job.ack.at)}`;
    field(fields, "Acknowledged", job.ack.comment ? `${by}: ${job.ack.comment}` : by);
  }
  $("job-fields").replaceChildren(...fields.childNodes);
  $("job-fields").className = `fields state-${cssToken(job.state)}`;
  renderErrors(job.errors || []);
  updateUnwatch();
  updateAck();

  // Rebuilt only when something changed, so a focused button keeps its focus.
  const container = $("job-deliveries");
  const signature = JSON.stringify([job.deliveries, canWrite(), Array.from(inFlight)]);
  if (container.dataset.signature !== signature) {
    container.dataset.signature = signature;
    container.replaceChildren(...job.deliveries.map(deliveryCard));
  }
  $("job-deliveries-empty").hidden = job.deliveries.length > 0;
}

function labelList(labels) {
  const list = el("ul", "labels");
  for (const [key, value] of Object.entries(labels)) {
    list.append(el("li", "label", `${key}=${value}`));
  }
  if (!list.children.length) list.append(el("li", "none", "—"));
  return list;
}

function renderErrors(errors) {
  // Datasaur's own account of what went wrong: each error's id and its stack, as text.
  const items = errors.map((error) => {
    const item = el("li", "job-error");
    item.append(el("code", "id", error.id), el("pre", "stack", error.stack));
    return item;
  });
  $("job-errors-list").replaceChildren(...items);
  $("job-errors").hidden = items.length === 0;
}

function updateUnwatch() {
  const button = $("job-unwatch");
  button.hidden = !job || job.state === "unwatched";
  button.disabled = !canWrite();
  button.title = canWrite()
    ? "Stop watching this job; deliveries already due are still sent"
    : readOnlyReason("unwatching");
}

async function unwatch() {
  if (!job || !canWrite()) return;
  const id = job.id;
  $("job-unwatch").disabled = true;
  try {
    const { data } = await call("DELETE", `jobs/${encodeURIComponent(id)}`);
    if (job && job.id === id) {
      job = { ...data.job, deliveries: job.deliveries };
      render();
    }
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) notice(`No job ${id} now.`);
    else failure(error);
    updateUnwatch();
  }
}

function updateAck() {
  // Reminders repeat a failure until someone acknowledges it: offer it where one can come.
  const button = $("job-ack");
  const ended = job && (job.status === "FAILED" || job.state === "expired");
  button.hidden = !ended || Boolean(job.ack);
  button.disabled = !canWrite();
  button.title = canWrite()
    ? "Acknowledge: no more reminders about this job"
    : readOnlyReason("acknowledging");
}

async function acknowledge() {
  if (!job || !canWrite()) return;
  const id = job.id;
  $("job-ack").disabled = true;
  try {
    const { data } = await call("POST", `jobs/${encodeURIComponent(id)}/ack`, {});
    if (job && job.id === id) {
      job = { ...job, ack: data.ack };
      render();
    }
  } catch (error) {
    failure(error);
    updateAck();
  }
}

function deliveryCard(delivery) {
  const card = el("article", `delivery card state-${cssToken(delivery.state)}`);
  card.dataset.key = delivery.id;
  const head = el("div", "delivery-head");
  const title = el("h3");
  const callback = el("span", "callback", delivery.callback);
  title.append(callback, " · ", el("span", "event", delivery.event));
  const button = redeliverButton();
  updateRedeliver(button, delivery);
  head.append(title, badge(delivery.state), button);
  const facts = document.createElement("dl");
  facts.className = "fields compact";
  field(facts, "Webhook ID", delivery.id);
  field(facts, "Attempts", delivery.attempts);
  field(facts, "Created", when(delivery.created_at, true));
  if (delivery.delivered_at) field(facts, "Delivered", when(delivery.delivered_at, true));
  if (delivery.next_attempt_at) {
    field(facts, "Next attempt", when(delivery.next_attempt_at, true));
  }
  if (delivery.last_error) field(facts, "Last error", delivery.last_error);
  card.append(head, facts, attemptLog(delivery.history || []));
  return card;
}

function attemptLog(history) {
  if (!history.length) return el("p", "empty", "No attempts yet.");
  const table = el("table", "attempts");
  const caption = el("caption", "", "Attempts");
  const head = table.createTHead().insertRow();
  for (const name of ["Time", "Duration", "Outcome", "Detail"]) {
    const th = el("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  table.prepend(caption);
  const body = table.createTBody();
  for (const attempt of history) {
    const row = body.insertRow();
    row.className = attempt.ok ? "attempt-ok" : "attempt-failed";
    const time = row.insertCell();
    setText(time, clock(attempt.attempted_at));
    time.title = relative(attempt.attempted_at);
    row.insertCell().textContent = `${Math.round(attempt.duration_ms)} ms`;
    row.insertCell().append(badge(attempt.ok ? "ok" : "failed"));
    row.insertCell().textContent = attempt.detail;
  }
  return table;
}

function patch(delivery) {
  // Show a redelivery's answer at once; the next refresh follows it from there.
  if (!job || session.route.view !== "job") return;
  const { history, ...row } = delivery;
  job.deliveries = job.deliveries.map((d) =>
    d.id === row.id ? { ...row, history: history || d.history } : d,
  );
  render();
}

function clear(id) {
  $("job-fields").replaceChildren();
  renderErrors([]);
  $("job-unwatch").hidden = true;
  $("job-ack").hidden = true;
  $("job-deliveries").replaceChildren();
  $("job-deliveries").dataset.signature = "";
  setText($("job-title"), id);
  setText($("job-id"), id);
}

export default {
  name: "job",
  tab: "jobs", // shown under the Jobs tab
  live: true,
  match(path) {
    if (!path.startsWith("job/")) return null;
    try {
      return { id: decodeURIComponent(path.slice(4)) };
    } catch {
      return null;
    }
  },
  start() {
    document.addEventListener("delivery", (event) => patch(event.detail));
    $("job-unwatch").addEventListener("click", unwatch);
    $("job-ack").addEventListener("click", acknowledge);
  },
  enter(route) {
    if (!job || job.id !== route.id) clear(route.id);
  },
  async load(route) {
    const found = (await get(`jobs/${encodeURIComponent(route.id)}`)).job;
    return () => {
      job = found;
      render();
    };
  },
  reset() {
    job = null;
    clear("");
  },
};
