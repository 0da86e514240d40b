// The status page of datasaur-notifier: plain JavaScript modules, no build step, no
// dependencies. This module signs in and out, routes (#/<view>?<filters>) and keeps the
// view shown live; each view is a module of its own, registered in VIEWS.
//
// Security rules kept throughout: every value from the API (from Datasaur or from a
// registration) reaches the page through textContent, attribute setters or <option>
// values, never through HTML parsing (no innerHTML); the token lives in sessionStorage
// only and travels in the Authorization header only.
//
// A view is {name, title?, tab?, live?, keepsFilters?, match?(path), start?(), enter?(route),
// load(route) -> render, reset?()}: `title` gives it a tab (in VIEWS order), `tab` names
// the tab it belongs to, `match` claims paths other than its name, `load` fetches and
// returns what renders the answer. Its markup is <section id="view-NAME"> in index.html;
// a view without one gets an empty section, which its start() fills.

import { ApiError, call } from "./api.js";
import { $, el, setText } from "./format.js";
import { failure, notice } from "./notice.js";
import { inFlight } from "./redeliver.js";
import { app, session } from "./session.js";
import callbacks from "./callbacks.js";
import deliveries from "./deliveries.js";
import groups from "./groups.js";
import job from "./job.js";
import jobs from "./jobs.js";
import register from "./register.js";
import silences from "./silences.js";

const VIEWS = [jobs, job, groups, deliveries, callbacks, silences, register];

const TOKEN_KEY = "datasaur-notifier.token";
const REFRESH_MS = 2000;
const byName = new Map(VIEWS.map((view) => [view.name, view]));
// Each list view's last filters, kept when it is left and come back to.
const filters = new Map(VIEWS.filter((v) => v.keepsFilters).map((v) => [v.name, null]));

// --- signing in and out ------------------------------------------------------------------

function signInMessage(error) {
  if (!(error instanceof ApiError)) return `Sign-in failed: ${error}`;
  if (error.status === 401) {
    return "That token was not accepted. Check it against api.tokens in the daemon's config.";
  }
  if (error.status === 429) {
    const wait = error.retryAfter || 60;
    return `Too many failed sign-ins from this address; try again in ${wait} s.`;
  }
  if (error.status === 0) return "Cannot reach the notifier. Is the daemon running?";
  return `Sign-in failed: ${error.status} ${error.message}`;
}

async function signIn(candidate) {
  const { data } = await call("GET", "whoami", undefined, candidate);
  session.token = candidate;
  session.caller = { name: String(data.name), scope: data.scope === "write" ? "write" : "read" };
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("token").value = "";
  setText($("sign-in-error"), "");
  setText($("who"), `${session.caller.name} (${session.caller.scope})`);
  $("session").hidden = false;
  $("nav").hidden = false;
  $("sign-in").hidden = true;
  route();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.caller = null;
  session.generation += 1;
  clearTimeout(session.timer);
  inFlight.clear();
  for (const name of filters.keys()) filters.set(name, null);
  for (const view of VIEWS) view.reset?.();
  setText($("who"), "");
  setText($("updated"), "");
  notice("");
  $("session").hidden = true;
  $("nav").hidden = true;
  for (const section of document.querySelectorAll("section.view")) section.hidden = true;
  $("sign-in").hidden = false;
  setText($("sign-in-error"), message);
  $("token").focus();
}

// --- routing -------------------------------------------------------------------------------

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
  for (const view of VIEWS) {
    const matched = view.match ? view.match(path) : path === view.name ? {} : null;
    if (matched) return { ...matched, view: view.name, params };
  }
  return { view: VIEWS[0].name, params };
}

function route() {
  if (!session.token) return;
  session.route = parseRoute();
  const remembered = filters.get(session.route.view);
  if (remembered && !session.route.params.toString() && remembered.toString()) {
    keepFilters(session.route.view, new URLSearchParams(remembered)); // back via its tab
  }
  const { view: name, params } = session.route;
  if (filters.has(name)) filters.set(name, new URLSearchParams(params));
  const view = byName.get(name);
  for (const section of document.querySelectorAll("section.view")) {
    section.hidden = section.id !== `view-${name}`;
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === (view.tab || name)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view.enter?.(session.route);
  notice("");
  refresh();
}

function keepFilters(name, params) {
  // The filters live in the address (never the token), so a reload or a link keeps them.
  for (const [key, value] of Array.from(params.entries())) if (!value) params.delete(key);
  filters.set(name, new URLSearchParams(params));
  const query = params.toString();
  history.replaceState(null, "", `#/${name}${query ? `?${query}` : ""}`);
  session.route = parseRoute();
}

// --- the refresh loop ----------------------------------------------------------------------

async function refresh() {
  clearTimeout(session.timer);
  if (!session.token) return;
  const generation = ++session.generation;
  const current = session.route;
  const view = byName.get(current.view);
  try {
    const render = await view.load(current);
    if (generation !== session.generation) return;
    render();
    notice("");
    setText($("updated"), `Updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (generation !== session.generation) return;
    failure(error);
  } finally {
    const live = session.token && view.live && !document.hidden;
    if (generation === session.generation && live) {
      session.timer = setTimeout(refresh, REFRESH_MS); // a hidden tab resumes when shown
    }
  }
}

// --- wiring ----------------------------------------------------------------------------------

function build() {
  // A tab for each view with a title, and a section for each view index.html lacks.
  const nav = $("nav");
  for (const view of VIEWS) {
    if (view.title) {
      const link = el("a", "", view.title);
      link.href = `#/${view.name}`;
      link.dataset.view = view.name;
      nav.append(link);
    }
    if (!$(`view-${view.name}`)) {
      const section = el("section", "view");
      section.id = `view-${view.name}`;
      section.hidden = true;
      document.querySelector("main").append(section);
    }
  }
}

function start() {
  Object.assign(app, { refresh, keepFilters, signOut });
  build();
  for (const view of VIEWS) view.start?.();
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = $("token").value.trim();
    if (!candidate) {
      setText($("sign-in-error"), "Enter a token.");
      return;
    }
    const button = $("sign-in-button");
    button.disabled = true;
    setText($("sign-in-error"), "");
    try {
      await signIn(candidate);
    } catch (error) {
      setText($("sign-in-error"), signInMessage(error));
      $("token").select();
    } finally {
      button.disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && session.token) refresh();
  });

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (!saved) {
    signOut();
    return;
  }
  signIn(saved).catch((error) => {
    signOut(signInMessage(error));
    if (error instanceof ApiError && error.status === 0) {
      sessionStorage.setItem(TOKEN_KEY, saved); // the daemon is down, the token still good
      setText($("sign-in-error"), `${signInMessage(error)} Reload the page to try again.`);
    }
  });
}

start();
