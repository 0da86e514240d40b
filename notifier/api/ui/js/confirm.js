// Asking before an action that is hard to take back: a modal <dialog> (no window.confirm,
// so the page keeps running), answered with a promise.

import { $, el, setText } from "./format.js";

function dialog() {
  let box = $("confirm");
  if (box) return box;
  box = el("dialog", "card confirm");
  box.id = "confirm";
  box.setAttribute("aria-labelledby", "confirm-message");
  const message = el("p");
  message.id = "confirm-message";
  const form = el("form", "row");
  form.method = "dialog";
  const yes = el("button", "", "OK");
  yes.value = "yes";
  yes.id = "confirm-yes";
  const no = el("button", "secondary", "Cancel");
  no.value = "no";
  form.append(yes, no);
  box.append(message, form);
  document.body.append(box);
  return box;
}

export function ask(message, action) {
  const box = dialog();
  setText($("confirm-message"), message);
  setText($("confirm-yes"), action);
  box.returnValue = "";
  return new Promise((resolve) => {
    box.addEventListener("close", () => resolve(box.returnValue === "yes"), { once: true });
    box.showModal();
    $("confirm-yes").focus();
  });
}
