// The Redeliver button of a dead or delivered delivery (in the Deliveries table and in
// a job's detail). The answer is announced as a "delivery" event on the document, so
// each view showing the delivery updates it at once.

import { ApiError, call } from "./api.js";
import { el } from "./format.js";
import { failure, notice } from "./notice.js";
import { app, canWrite, readOnlyReason, session } from "./session.js";

export const inFlight = new Set(); // delivery ids being redelivered
const buttonDelivery = new WeakMap(); // <button> -> delivery id

export function redeliverable(delivery) {
  return delivery.state === "dead" || delivery.state === "delivered";
}

export function redeliverButton() {
  const button = el("button", "redeliver", "Redeliver");
  button.type = "button";
  button.addEventListener("click", () => redeliverOne(button));
  return button;
}

export function updateRedeliver(button, delivery) {
  buttonDelivery.set(button, delivery.id);
  button.hidden = !redeliverable(delivery);
  const busy = inFlight.has(delivery.id);
  button.disabled = !canWrite() || busy;
  button.setAttribute("aria-busy", String(busy));
  button.title = canWrite()
    ? "Send this notification again, under the same webhook-id"
    : readOnlyReason("redelivering");
}

async function redeliverOne(button) {
  const id = buttonDelivery.get(button);
  if (!id || !canWrite() || inFlight.has(id)) return;
  button.disabled = true;
  await redeliver([id]);
}

// Queue each delivery again; true if all were.
export async function redeliver(ids) {
  const wanted = ids.filter((id) => !inFlight.has(id));
  for (const id of wanted) inFlight.add(id);
  let failed = 0;
  try {
    for (const id of wanted) {
      try {
        const { data } = await call("POST", `deliveries/${encodeURIComponent(id)}/redeliver`, {});
        document.dispatchEvent(new CustomEvent("delivery", { detail: data.delivery }));
      } catch (error) {
        failed += 1;
        if (error instanceof ApiError && error.status === 403) {
          notice(readOnlyReason("redelivering"));
        } else if (error instanceof ApiError && error.status === 404) {
          notice(`No delivery ${id} now.`);
        } else failure(error);
        if (error instanceof ApiError && [0, 401, 403, 429].includes(error.status)) break;
      }
    }
  } finally {
    for (const id of wanted) inFlight.delete(id);
  }
  if (session.token) app.refresh();
  return failed === 0;
}
