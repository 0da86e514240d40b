// Who is signed in, and what main.js lends the views.

export const session = {
  token: null,
  caller: null, // {name, scope} from /v1/whoami
  route: { view: "jobs", params: new URLSearchParams() },
  generation: 0, // bumps on every refresh, route change and sign-out: late answers are dropped
  timer: null,
};

// Set by main.js at start: refresh the view shown, keep a list view's filters in the
// address, sign out with a message.
export const app = { refresh() {}, keepFilters() {}, signOut() {} };

export function canWrite() {
  return session.caller !== null && session.caller.scope === "write";
}

export function readOnlyReason(action) {
  const name = session.caller ? session.caller.name : "this";
  return `The token “${name}” may only read: ${action} needs a write token`;
}
