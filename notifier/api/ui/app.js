// The status page of datasaur-notifier: plain JavaScript, no build step, no dependencies.
//
// Security rules kept throughout: every value from the API (from Datasaur or from a
// registration) reaches the page through textContent, attribute setters or <option>
// values, never through HTML parsing (no innerHTML); the token lives in sessionStorage
// only and travels in the Authorization header only.
(() => {
  "use strict";

  const TOKEN_KEY = "datasaur-notifier.token";
  const REFRESH_MS = 2000;
  const PAGE_SIZE = 1000;
  const MAX_PAGES = 5;
  const API = new URL("../v1/", document.baseURI);
  const LIVE_VIEWS = new Set(["jobs", "job", "deliveries", "callbacks"]);
  const VIEW_NAMES = ["jobs", "deliveries", "callbacks", "register"];

  const $ = (id) => document.getElementById(id);

  const session = {
    token: null,
    caller: null, // {name, scope} from /v1/whoami
    route: { view: "jobs", params: new URLSearchParams() },
    generation: 0, // bumps on every refresh, route change and sign-out: late answers are dropped
    timer: null,
  };
  const cache = { jobs: null, job: null, deliveries: null, callbacks: [] };
  const rowParts = new WeakMap(); // <tr> -> its cells and controls
  const inFlight = new Set(); // delivery ids being redelivered
  const filters = new Map([
    ["jobs", new URLSearchParams()],
    ["deliveries", new URLSearchParams()],
  ]); // each list view's last filters, kept when it is left and come back to

  // --- helpers -------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setText(node, text) {
    const value = text === null || text === undefined ? "" : String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function token(value) {
    // A CSS class fragment from a value the API controls.
    return String(value).toLowerCase().replace(/[^a-z0-9_-]/g, "");
  }

  function dash(value) {
    return value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function span(seconds) {
    const s = Math.abs(Math.round(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m`;
    if (s < 86400) return `${Math.floor(s / 3600)}h`;
    return `${Math.floor(s / 86400)}d`;
  }

  function relative(iso) {
    if (!iso) return "—";
    const when = Date.parse(iso);
    if (Number.isNaN(when)) return String(iso);
    const seconds = (when - Date.now()) / 1000;
    if (Math.abs(seconds) < 1) return "now";
    return seconds < 0 ? `${span(seconds)} ago` : `in ${span(seconds)}`;
  }

  function clock(iso) {
    const when = Date.parse(iso);
    return Number.isNaN(when) ? String(iso) : new Date(when).toLocaleString();
  }

  function timeText(node, iso, prefix = "") {
    setText(node, iso ? prefix + relative(iso) : "—");
    node.title = iso ? clock(iso) : "";
  }

  function eta(job) {
    // Datasaur may tell us one day; show it when the job object has it.
    const value = job.eta;
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "number") return `in ${span(value)}`;
    return Number.isNaN(Date.parse(value)) ? String(value) : relative(value);
  }

  function percent(progress) {
    if (typeof progress !== "number" || !Number.isFinite(progress)) return null;
    return Math.max(0, Math.min(100, Math.round(progress)));
  }

  function progressBar() {
    const wrap = el("span", "progress");
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.setAttribute("aria-label", "Progress");
    const label = el("span", "pct");
    wrap.append(bar, label);
    return { wrap, bar, label };
  }

  function setProgress(parts, progress) {
    const pct = percent(progress);
    parts.bar.hidden = pct === null;
    // The attribute, not .value: a bar without one is indeterminate yet reads 0.
    if (pct !== null && parts.bar.getAttribute("value") !== String(pct)) parts.bar.value = pct;
    setText(parts.label, pct === null ? "—" : `${pct}%`);
  }

  function badge(text) {
    return el("span", `badge state-${token(text)}`, text);
  }

  function setBadge(node, text) {
    node.className = `badge state-${token(text)}`;
    setText(node, text);
  }

  function jobHref(id) {
    return `#/job/${encodeURIComponent(id)}`;
  }

  function canWrite() {
    return session.caller !== null && session.caller.scope === "write";
  }

  function readOnlyReason(action) {
    const name = session.caller ? session.caller.name : "this";
    return `The token “${name}” may only read: ${action} needs a write token`;
  }

  // Keyed rows: existing rows are updated in place (focus, hover and the progress bars
  // survive each refresh), new ones created, missing ones removed, order followed.
  function syncRows(tbody, items, keyOf, create, update) {
    const existing = new Map();
    for (const row of Array.from(tbody.rows)) existing.set(row.dataset.key, row);
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let row = existing.get(key);
      if (row) existing.delete(key);
      else {
        row = create();
        row.dataset.key = key;
      }
      update(row, item);
      const wanted = previous ? previous.nextSibling : tbody.firstChild;
      if (wanted !== row) tbody.insertBefore(row, wanted);
      previous = row;
    }
    for (const row of existing.values()) row.remove();
  }

  // --- the API -------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, details = [], retryAfter = null) {
      super(message);
      this.status = status;
      this.details = details;
      this.retryAfter = retryAfter;
    }
  }

  async function call(method, path, body, bearer = session.token) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${bearer}` };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(new URL(path, API), init);
    } catch {
      throw new ApiError(0, "Cannot reach the notifier. Is the daemon running? Retrying.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message =
        data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
      const details = data && Array.isArray(data.details) ? data.details : [];
      throw new ApiError(response.status, message, details, response.headers.get("Retry-After"));
    }
    return { status: response.status, data };
  }

  async function get(path) {
    return (await call("GET", path)).data;
  }

  async function getAll(path, key, params) {
    const items = [];
    let cursor = null;
    let pages = 0;
    do {
      const query = new URLSearchParams(params);
      query.set("limit", String(PAGE_SIZE));
      if (cursor) query.set("cursor", cursor);
      const page = await get(`${path}?${query}`);
      items.push(...page[key]);
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor && pages < MAX_PAGES);
    items.reverse(); // newest first
    return { items, truncated: Boolean(cursor) };
  }

  // --- notices ---------------------------------------------------------------------------

  function notice(message) {
    const box = $("notice");
    setText(box, message || "");
    box.hidden = !message;
  }

  function failure(error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut("The token is no longer accepted (was it removed from the config?). Sign in again.");
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

  // --- signing in and out ----------------------------------------------------------------

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
    applyScope();
    route();
  }

  function signOut(message = "") {
    sessionStorage.removeItem(TOKEN_KEY);
    session.token = null;
    session.caller = null;
    session.generation += 1;
    clearTimeout(session.timer);
    cache.jobs = cache.job = cache.deliveries = null;
    cache.callbacks = [];
    inFlight.clear();
    for (const view of filters.keys()) filters.set(view, new URLSearchParams());
    for (const table of document.querySelectorAll("table.data")) table.tBodies[0].replaceChildren();
    $("job-fields").replaceChildren();
    $("job-deliveries").replaceChildren();
    setText($("job-title"), "");
    setText($("job-id"), "");
    $("register-form").reset();
    clearFieldErrors();
    setText($("register-result"), "");
    setText($("who"), "");
    setText($("updated"), "");
    notice("");
    $("session").hidden = true;
    $("nav").hidden = true;
    for (const view of document.querySelectorAll("section.view")) view.hidden = true;
    $("sign-in").hidden = false;
    setText($("sign-in-error"), message);
    $("token").focus();
  }

  function applyScope() {
    const writer = canWrite();
    $("register-submit").disabled = !writer;
    $("register-readonly").hidden = writer;
    setText($("register-readonly"), writer ? "" : `${readOnlyReason("registering")}.`);
  }

  // --- routing -----------------------------------------------------------------------------

  function parseRoute() {
    const hash = location.hash.replace(/^#\/?/, "");
    const at = hash.indexOf("?");
    const path = at < 0 ? hash : hash.slice(0, at);
    const params = new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
    if (path.startsWith("job/")) {
      try {
        return { view: "job", id: decodeURIComponent(path.slice(4)), params };
      } catch {
        return { view: "jobs", params };
      }
    }
    return { view: VIEW_NAMES.includes(path) ? path : "jobs", params };
  }

  function route() {
    if (!session.token) return;
    session.route = parseRoute();
    const remembered = filters.get(session.route.view);
    if (remembered && !session.route.params.toString() && remembered.toString()) {
      keepFilters(session.route.view, new URLSearchParams(remembered)); // back via its tab
    }
    const { view, params } = session.route;
    if (filters.has(view)) filters.set(view, new URLSearchParams(params));
    for (const section of document.querySelectorAll("section.view")) {
      section.hidden = section.id !== `view-${view}`;
    }
    for (const link of document.querySelectorAll("#nav a")) {
      const current = link.dataset.view === (view === "job" ? "jobs" : view);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (view === "jobs") {
      $("jobs-state").value = params.get("state") || "";
      $("jobs-search").value = params.get("q") || "";
    } else if (view === "deliveries") {
      $("deliveries-state").value = params.get("state") || "";
      setCallbackOptions(params.get("callback") || "");
    } else if (view === "job") {
      if (!cache.job || cache.job.id !== session.route.id) {
        $("job-fields").replaceChildren();
        $("job-deliveries").replaceChildren();
        $("job-deliveries").dataset.signature = "";
        setText($("job-title"), session.route.id);
        setText($("job-id"), session.route.id);
      }
    }
    notice("");
    refresh();
  }

  function keepFilters(view, params) {
    // The filters live in the address (never the token), so a reload or a link keeps them.
    for (const [name, value] of Array.from(params.entries())) if (!value) params.delete(name);
    filters.set(view, new URLSearchParams(params));
    const query = params.toString();
    history.replaceState(null, "", `#/${view}${query ? `?${query}` : ""}`);
    session.route = parseRoute();
  }

  // --- the refresh loop ----------------------------------------------------------------------

  async function refresh() {
    clearTimeout(session.timer);
    if (!session.token) return;
    const generation = ++session.generation;
    const current = session.route;
    try {
      const render = await LOADERS[current.view](current);
      if (generation !== session.generation) return;
      render();
      notice("");
      setText($("updated"), `Updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      if (generation !== session.generation) return;
      failure(error);
    } finally {
      const live = session.token && LIVE_VIEWS.has(current.view) && !document.hidden;
      if (generation === session.generation && live) {
        session.timer = setTimeout(refresh, REFRESH_MS); // a hidden tab resumes when shown
      }
    }
  }

  const LOADERS = {
    async jobs() {
      const state = $("jobs-state").value;
      const jobs = await getAll("jobs", "jobs", state ? { state } : {});
      return () => {
        cache.jobs = jobs;
        renderJobs();
      };
    },
    async job(current) {
      const { job } = await get(`jobs/${encodeURIComponent(current.id)}`);
      return () => {
        cache.job = job;
        renderJob();
      };
    },
    async deliveries() {
      const params = {};
      if ($("deliveries-state").value) params.state = $("deliveries-state").value;
      if ($("deliveries-callback").value) params.callback = $("deliveries-callback").value;
      const [deliveries, callbacks] = await Promise.all([
        getAll("deliveries", "deliveries", params),
        get("callbacks"),
      ]);
      return () => {
        cache.callbacks = callbacks.callbacks;
        setCallbackOptions($("deliveries-callback").value);
        cache.deliveries = deliveries;
        renderDeliveries();
      };
    },
    async callbacks() {
      const { callbacks } = await get("callbacks");
      return () => {
        cache.callbacks = callbacks;
        renderCallbacks();
      };
    },
    async register() {
      const { callbacks } = await get("callbacks");
      return () => {
        cache.callbacks = callbacks;
        const names = callbacks.map((c) => c.name).filter((name) => !name.startsWith("url:"));
        setText($("reg-notify-hint"), names.length ? `Known: ${names.join(", ")}` : "");
      };
    },
  };

  // --- Jobs ----------------------------------------------------------------------------------

  function renderJobs() {
    if (!cache.jobs) return;
    const needle = $("jobs-search").value.trim().toLowerCase();
    const shown = cache.jobs.items.filter(
      (job) =>
        !needle ||
        job.id.toLowerCase().includes(needle) ||
        (job.name || "").toLowerCase().includes(needle),
    );
    syncRows($("jobs-table").tBodies[0], shown, (job) => job.id, createJobRow, updateJobRow);
    $("jobs-empty").hidden = shown.length > 0;
    const total = cache.jobs.items.length;
    let meta = needle ? `${shown.length} of ${total} jobs` : `${total} jobs`;
    if (cache.jobs.truncated) meta += ` (the newest ${total} only)`;
    setText($("jobs-meta"), meta);
  }

  function createJobRow() {
    const row = document.createElement("tr");
    const cells = {};
    for (const name of ["id", "name", "state", "status", "progress", "eta", "polled", "error"]) {
      cells[name] = row.insertCell();
      cells[name].className = `col-${name}`;
    }
    cells.link = el("a", "id");
    cells.id.append(cells.link);
    cells.badge = badge("");
    cells.state.append(cells.badge);
    cells.bar = progressBar();
    cells.progress.append(cells.bar.wrap);
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button") || String(window.getSelection())) return;
      location.hash = cells.link.getAttribute("href");
    });
    rowParts.set(row, cells);
    return row;
  }

  function updateJobRow(row, job) {
    const cells = rowParts.get(row);
    const classes = ["job", `state-${token(job.state)}`];
    if (job.state !== "watching") classes.push("finished");
    if (job.status === "FAILED") classes.push("failed");
    row.className = classes.join(" ");
    cells.link.href = jobHref(job.id);
    setText(cells.link, job.id);
    setText(cells.name, dash(job.name));
    setBadge(cells.badge, job.state);
    setText(cells.status, dash(job.status));
    setProgress(cells.bar, job.progress);
    setText(cells.eta, eta(job));
    timeText(cells.polled, job.last_polled_at);
    setText(cells.error, job.last_error || "");
  }

  // --- one job -------------------------------------------------------------------------------

  function field(list, term, value) {
    const dt = el("dt", "", term);
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = dash(value);
    list.append(dt, dd);
    return dd;
  }

  function when(iso, absolute = false) {
    // Relative ("5s ago") where the view is rebuilt every refresh, else the local time.
    const node = el("span");
    timeText(node, iso);
    if (absolute && iso) {
      node.title = relative(iso);
      setText(node, clock(iso));
    }
    return node;
  }

  function renderJob() {
    const job = cache.job;
    setText($("job-title"), job.name || job.id);
    setText($("job-id"), job.id);
    const fields = document.createElement("dl");
    const bar = progressBar();
    setProgress(bar, job.progress);
    field(fields, "State", badge(job.state));
    field(fields, "Status", job.status);
    field(fields, "Progress", bar.wrap);
    field(fields, "ETA", eta(job));
    field(fields, "Last polled", when(job.last_polled_at));
    field(fields, "Next poll", when(job.next_poll_at));
    field(fields, "Last error", job.last_error);
    field(fields, "Notifies", job.notify ? job.notify.join(", ") : "every callback");
    field(fields, "On status", (job.on_status || []).join(", "));
    if (job.callback_url) field(fields, "Callback URL", job.callback_url);
    field(fields, "Source", job.source);
    if (job.owner) field(fields, "Polled by", job.owner);
    $("job-fields").replaceChildren(...fields.childNodes);
    $("job-fields").className = `fields state-${token(job.state)}`;

    // Rebuilt only when something changed, so a focused button keeps its focus.
    const container = $("job-deliveries");
    const signature = JSON.stringify([job.deliveries, canWrite(), Array.from(inFlight)]);
    if (container.dataset.signature !== signature) {
      container.dataset.signature = signature;
      container.replaceChildren(...job.deliveries.map(deliveryCard));
    }
    $("job-deliveries-empty").hidden = job.deliveries.length > 0;
  }

  function deliveryCard(delivery) {
    const card = el("article", `delivery card state-${token(delivery.state)}`);
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

  // --- Deliveries ------------------------------------------------------------------------------

  function setCallbackOptions(selected) {
    const select = $("deliveries-callback");
    const names = cache.callbacks.map((c) => c.name);
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

  function renderDeliveries() {
    if (!cache.deliveries) return;
    const items = cache.deliveries.items;
    syncRows(
      $("deliveries-table").tBodies[0],
      items,
      (d) => d.id,
      createDeliveryRow,
      updateDeliveryRow,
    );
    $("deliveries-empty").hidden = items.length > 0;
    let meta = `${items.length} deliveries`;
    if (cache.deliveries.truncated) meta += ` (the newest ${items.length} only)`;
    setText($("deliveries-meta"), meta);
  }

  function createDeliveryRow() {
    const row = document.createElement("tr");
    const cells = {};
    const columns = ["id", "job", "callback", "event", "state", "attempts", "created", "next"];
    for (const name of [...columns, "error", "action"]) {
      cells[name] = row.insertCell();
      cells[name].className = `col-${name}`;
    }
    cells.code = el("code", "id");
    cells.id.append(cells.code);
    cells.badge = badge("");
    cells.state.append(cells.badge);
    cells.button = redeliverButton();
    cells.action.append(cells.button);
    rowParts.set(row, cells);
    return row;
  }

  function updateDeliveryRow(row, delivery) {
    const cells = rowParts.get(row);
    row.className = `delivery state-${token(delivery.state)}`;
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

  // --- Redeliver -------------------------------------------------------------------------------

  const buttonDelivery = new WeakMap(); // <button> -> delivery id

  function redeliverButton() {
    const button = el("button", "redeliver", "Redeliver");
    button.type = "button";
    button.addEventListener("click", () => redeliver(button));
    return button;
  }

  function updateRedeliver(button, delivery) {
    buttonDelivery.set(button, delivery.id);
    button.hidden = !(delivery.state === "dead" || delivery.state === "delivered");
    const busy = inFlight.has(delivery.id);
    button.disabled = !canWrite() || busy;
    button.setAttribute("aria-busy", String(busy));
    button.title = canWrite()
      ? "Send this notification again, under the same webhook-id"
      : readOnlyReason("redelivering");
  }

  async function redeliver(button) {
    const id = buttonDelivery.get(button);
    if (!id || !canWrite() || inFlight.has(id)) return;
    inFlight.add(id);
    button.disabled = true;
    try {
      const { data } = await call("POST", `deliveries/${encodeURIComponent(id)}/redeliver`, {});
      patchDelivery(data.delivery);
    } catch (error) {
      if (error instanceof ApiError && error.status === 403) notice(readOnlyReason("redelivering"));
      else if (error instanceof ApiError && error.status === 404) notice(`No delivery ${id} now.`);
      else failure(error);
    } finally {
      inFlight.delete(id);
    }
    if (session.token) refresh();
  }

  function patchDelivery(delivery) {
    // Show the answer at once; the next refresh follows the delivery from there.
    const { history, ...row } = delivery;
    if (cache.deliveries) {
      cache.deliveries.items = cache.deliveries.items.map((d) => (d.id === row.id ? row : d));
      renderDeliveries();
    }
    if (cache.job) {
      cache.job.deliveries = cache.job.deliveries.map((d) =>
        d.id === row.id ? { ...row, history: history || d.history } : d,
      );
      if (session.route.view === "job") renderJob();
    }
  }

  // --- Callbacks -------------------------------------------------------------------------------

  function renderCallbacks() {
    const callbacks = cache.callbacks;
    const tbody = $("callbacks-table").tBodies[0];
    syncRows(tbody, callbacks, (c) => c.name, createCallbackRow, updateCallbackRow);
    $("callbacks-empty").hidden = callbacks.length > 0;
  }

  function createCallbackRow() {
    const row = document.createElement("tr");
    const cells = {};
    for (const name of ["name", "pending", "dead", "paused", "failures", "error"]) {
      cells[name] = row.insertCell();
      cells[name].className = `col-${name}`;
    }
    cells.pendingLink = el("a");
    cells.pending.append(cells.pendingLink);
    cells.deadLink = el("a");
    cells.dead.append(cells.deadLink);
    cells.pausedBadge = badge("");
    cells.paused.append(cells.pausedBadge);
    rowParts.set(row, cells);
    return row;
  }

  function updateCallbackRow(row, callback) {
    const cells = rowParts.get(row);
    const classes = ["callback"];
    if (callback.paused) classes.push("paused");
    if (callback.dead > 0 || callback.consecutive_failures > 0) classes.push("unhealthy");
    row.className = classes.join(" ");
    setText(cells.name, callback.name);
    const filter = (state) =>
      `#/deliveries?${new URLSearchParams({ state, callback: callback.name })}`;
    cells.pendingLink.href = filter("pending");
    setText(cells.pendingLink, callback.pending);
    cells.deadLink.href = filter("dead");
    setText(cells.deadLink, callback.dead);
    const paused = callback.paused ? "paused" : "running";
    setBadge(cells.pausedBadge, paused);
    setText(cells.failures, callback.consecutive_failures);
    setText(cells.error, callback.last_error || "");
  }

  // --- Register --------------------------------------------------------------------------------

  const FIELDS = { id: "reg-id", name: "reg-name", notify: "reg-notify" };

  function clearFieldErrors() {
    for (const id of Object.values(FIELDS)) {
      $(id).removeAttribute("aria-invalid");
      setText($(`${id}-error`), "");
    }
    setText($("register-error"), "");
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
      showRegisterErrors(error);
    } finally {
      submit.disabled = !canWrite();
    }
  }

  function showRegisterErrors(error) {
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

  // --- wiring ----------------------------------------------------------------------------------

  function start() {
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

    $("jobs-filters").addEventListener("submit", (event) => event.preventDefault());
    const jobFilters = () =>
      keepFilters(
        "jobs",
        new URLSearchParams({ state: $("jobs-state").value, q: $("jobs-search").value }),
      );
    $("jobs-state").addEventListener("change", () => {
      jobFilters();
      refresh();
    });
    $("jobs-search").addEventListener("input", () => {
      jobFilters();
      renderJobs();
    });
    $("deliveries-filters").addEventListener("submit", (event) => event.preventDefault());
    for (const id of ["deliveries-state", "deliveries-callback"]) {
      $(id).addEventListener("change", () => {
        keepFilters(
          "deliveries",
          new URLSearchParams({
            state: $("deliveries-state").value,
            callback: $("deliveries-callback").value,
          }),
        );
        $("deliveries-table").tBodies[0].replaceChildren();
        refresh();
      });
    }
    $("register-form").addEventListener("submit", register);

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
})();
