// The notifier's HTTP API, as the page calls it: the token in the Authorization header
// only, JSON errors as ApiError, lists read a page at a time.

import { session } from "./session.js";

const API = new URL("../v1/", document.baseURI);
const PAGE_SIZE = 1000;
const MAX_PAGES = 5;

export class ApiError extends Error {
  constructor(status, message, details = [], retryAfter = null) {
    super(message);
    this.status = status;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export async function call(method, path, body, bearer = session.token) {
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
    const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
    const details = data && Array.isArray(data.details) ? data.details : [];
    throw new ApiError(response.status, message, details, response.headers.get("Retry-After"));
  }
  return { status: response.status, data };
}

export async function get(path) {
  return (await call("GET", path)).data;
}

export async function getAll(path, key, params) {
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
