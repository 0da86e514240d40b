// The notice line every view reports through, and how a failed call is reported.

import { ApiError } from "./api.js";
import { $, setText } from "./format.js";
import { app } from "./session.js";

export function notice(message) {
  const box = $("notice");
  setText(box, message || "");
  box.hidden = !message;
}

export function failure(error) {
  if (error instanceof ApiError && error.status === 401) {
    app.signOut("The token is no longer accepted (was it removed from the config?). Sign in again.");
    return;
  }
  if (error instanceof ApiError && error.status === 429) {
    const wait = error.retryAfter || 60;
    notice(`Too many failed authentications from this address; retrying in ${wait} s.`);
    return;
  }
  if (error instanceof ApiError && error.status) {
    notice(`The notifier answered ${error.status}: ${error.message}`);
    return;
  }
  notice(error instanceof Error ? error.message : String(error));
}
