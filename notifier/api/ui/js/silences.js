// The Silences view: the silences kept (active ones with an Expire button, and those
// ended within a week), and a form that adds one: a callback, how long, a comment.

import { ApiError, call, get } from "./api.js";
import { $, badge, el, setBadge, setText, syncRows, tableRow, timeText } from "./format.js";
import { failure } from "./notice.js";
import { app, canWrite, readOnlyReason } from "./session.js";

const COLUMNS = ["matcher", "state", "ends", "author", "comment", "actions"];
const rowParts = new WeakMap();

function labelled(text, input) {
  const label = el("label", "", text);
  label.append(input);
  return label;
}

function build(section) {
  const title = el("h1", "", "Silences");
  title.id = "silences-title";
  section.setAttribute("aria-labelledby", title.id);
  const form = el("form", "card narrow");
  form.id = "silence-form";
  form.noValidate = true;
  const callback = el("select");
  callback.id = "silence-callback";
  const duration = el("input");
  Object.assign(duration, { id: "silence-for", value: "2h", autocomplete: "off" });
  const comment = el("input");
  Object.assign(comment, { id: "silence-comment", autocomplete: "off" });
  const submit = el("button", "", "Add silence");
  Object.assign(submit, { id: "silence-submit", type: "submit" });
  const error = el("p", "error");
  error.id = "silence-error";
  error.setAttribute("role", "alert");
  form.append(
    labelled("Callback", callback),
    labelled("For", duration),
    labelled("Comment", comment),
    submit,
    error,
  );
  const table = el("table", "data");
  table.id = "silences-table";
  const head = table.createTHead().insertRow();
  for (const name of ["Matches", "State", "Ends", "Author", "Comment", ""]) {
    const th = el("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  table.createTBody();
  const wrap = el("div", "table-wrap");
  wrap.append(table);
  const empty = el("p", "empty", "No silences.");
  empty.id = "silences-empty";
  section.append(title, form, wrap, empty);
  form.addEventListener("submit", add);
}

async function add(event) {
  event.preventDefault();
  const error = $("silence-error");
  setText(error, "");
  if (!canWrite()) {
    setText(error, `${readOnlyReason("adding a silence")}.`);
    return;
  }
  const body = { callback: $("silence-callback").value, for: $("silence-for").value.trim() };
  const comment = $("silence-comment").value.trim();
  if (comment) body.comment = comment;
  try {
    await call("POST", "silences", body);
    $("silence-comment").value = "";
    app.refresh();
  } catch (caught) {
    if (caught instanceof ApiError && caught.details.length) {
      setText(error, caught.details.map((d) => `${d.path}: ${d.message}`).join(" — "));
    } else if (caught instanceof ApiError && caught.status !== 401) {
      setText(error, caught.message);
    } else failure(caught);
  }
}

async function expire(id, button) {
  button.disabled = true;
  try {
    await call("DELETE", `silences/${encodeURIComponent(id)}`);
    app.refresh();
  } catch (caught) {
    button.disabled = false;
    failure(caught);
  }
}

function active(silence) {
  const now = Date.now();
  return Date.parse(silence.starts_at) <= now && now < Date.parse(silence.ends_at);
}

function createRow() {
  const { row, cells } = tableRow(rowParts, COLUMNS);
  cells.badge = badge("");
  cells.state.append(cells.badge);
  cells.button = el("button", "secondary", "Expire");
  cells.button.type = "button";
  cells.actions.append(cells.button);
  cells.button.addEventListener("click", () => expire(row.dataset.key, cells.button));
  return row;
}

function updateRow(row, silence) {
  const cells = rowParts.get(row);
  const matcher = silence.callback
    ? `callback ${silence.callback}`
    : Object.entries(silence.match || {})
        .map(([key, value]) => `${key}=${value}`)
        .join(", ");
  setText(cells.matcher, matcher);
  const on = active(silence);
  row.className = on ? "silence active" : "silence ended";
  setBadge(cells.badge, on ? "active" : "ended");
  timeText(cells.ends, silence.ends_at);
  setText(cells.author, silence.author);
  setText(cells.comment, silence.comment);
  cells.button.hidden = !on;
  cells.button.disabled = !canWrite();
  cells.button.title = canWrite() ? "" : readOnlyReason("expiring a silence");
}

function render(silences, callbacks) {
  const select = $("silence-callback");
  const names = callbacks.map((c) => c.name).filter((name) => !name.startsWith("url:"));
  if (Array.from(select.options, (o) => o.value).join() !== names.join()) {
    const chosen = select.value;
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (names.includes(chosen)) select.value = chosen;
  }
  $("silence-submit").disabled = !canWrite();
  const ordered = [...silences].sort((a, b) => active(b) - active(a));
  syncRows($("silences-table").tBodies[0], ordered, (s) => s.id, createRow, updateRow);
  $("silences-empty").hidden = silences.length > 0;
}

export default {
  name: "silences",
  title: "Silences",
  live: true,
  start() {
    build($("view-silences"));
  },
  async load() {
    const [{ silences }, { callbacks }] = await Promise.all([get("silences"), get("callbacks")]);
    return () => render(silences, callbacks);
  },
  reset() {
    $("silences-table").tBodies[0].replaceChildren();
    setText($("silence-error"), "");
  },
};
