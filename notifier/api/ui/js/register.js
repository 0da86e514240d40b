// The Register view: watch a job from the page; the API's problems shown by their fields.

import { ApiError, call, get } from "./api.js";
import { $, el, jobHref, setText } from "./format.js";
import { failure } from "./notice.js";
import { canWrite, readOnlyReason } from "./session.js";

const FIELDS = { id: "reg-id", name: "reg-name", notify: "reg-notify" };

function clearFieldErrors() {
  for (const id of Object.values(FIELDS)) {
    $(id).removeAttribute("aria-invalid");
    setText($(`${id}-error`), "");
  }
  setText($("register-error"), "");
}

function applyScope() {
  const writer = canWrite();
  $("register-submit").disabled = !writer;
  $("register-readonly").hidden = writer;
  setText($("register-readonly"), writer ? "" : `${readOnlyReason("registering")}.`);
}

async function register(event) {
  event.preventDefault();
  clearFieldErrors();
  setText($("register-result"), "");
  if (!canWrite()) {
    setText($("register-error"), `${readOnlyReason("registering")}.`);
    return;
  }
  const body = { id: $("reg-id").value };
  const name = $("reg-name").value;
  if (name.trim()) body.name = name;
  const notify = $("reg-notify")
    .value.split(",")
    .map((part) => part.trim())
    .filter(Boolean);
  if (notify.length) body.notify = notify;
  const submit = $("register-submit");
  submit.disabled = true;
  try {
    const { status, data } = await call("POST", "jobs", body);
    const result = $("register-result");
    const link = el("a", "id", data.job.id);
    link.href = jobHref(data.job.id);
    result.replaceChildren(status === 201 ? "Registered " : "Updated ", link, ".");
    $("register-form").reset();
  } catch (error) {
    showErrors(error);
  } finally {
    submit.disabled = !canWrite();
  }
}

function showErrors(error) {
  if (!(error instanceof ApiError)) {
    setText($("register-error"), String(error));
    return;
  }
  if (error.status === 401) {
    failure(error);
    return;
  }
  const general = [];
  let first = null;
  for (const detail of error.details) {
    const path = String(detail.path || "");
    const key = path.replace(/\[.*$/, "").split(".")[0];
    const id = FIELDS[key];
    if (!id) {
      general.push(path ? `${path}: ${detail.message}` : String(detail.message));
      continue;
    }
    const input = $(id);
    const box = $(`${id}-error`);
    input.setAttribute("aria-invalid", "true");
    const message = String(detail.message);
    setText(box, box.textContent ? `${box.textContent} ${message}` : message);
    first = first || input;
  }
  if (!error.details.length || general.length) {
    setText($("register-error"), [error.message, ...general].join(" — "));
  }
  if (first) first.focus();
}

export default {
  name: "register",
  title: "Register",
  start() {
    $("register-form").addEventListener("submit", register);
  },
  enter() {
    applyScope();
  },
  async load() {
    const { callbacks } = await get("callbacks");
    return () => {
      const names = callbacks.map((c) => c.name).filter((name) => !name.startsWith("url:"));
      setText($("reg-notify-hint"), names.length ? `Known: ${names.join(", ")}` : "");
    };
  },
  reset() {
    $("register-form").reset();
    clearFieldErrors();
    setText($("register-result"), "");
  },
};
