// The Jobs view: the watch list, filtered by state (on the server) and searched by id or
// name (in the page), kept live.

import { getAll } from "./api.js";
import {
  $,
  badge,
  cssToken,
  dash,
  el,
  deadlineText,
  errorSummary,
  eta,
  groupHref,
  jobHref,
  outcomeBadge,
  progressBar,
  setProgress,
  setText,
  syncRows,
  tableRow,
  timeText,
} from "./format.js";
import { app } from "./session.js";

const COLUMNS = [
  "id", "name", "group", "state", "status", "progress", "eta", "deadline", "polled", "error",
];
const rowParts = new WeakMap();
let jobs = null;

function filtersNow() {
  return new URLSearchParams({
    state: $("jobs-state").value,
    group: $("jobs-group").value.trim(),
    q: $("jobs-search").value,
  });
}

function render() {
  if (!jobs) return;
  const needle = $("jobs-search").value.trim().toLowerCase();
  const shown = jobs.items.filter(
    (job) =>
      !needle ||
      job.id.toLowerCase().includes(needle) ||
      (job.name || "").toLowerCase().includes(needle),
  );
  syncRows($("jobs-table").tBodies[0], shown, (job) => job.id, createRow, updateRow);
  $("jobs-empty").hidden = shown.length > 0;
  const total = jobs.items.length;
  let meta = needle ? `${shown.length} of ${total} jobs` : `${total} jobs`;
  if (jobs.truncated) meta += ` (the newest ${total} only)`;
  setText($("jobs-meta"), meta);
}

function createRow() {
  const { row, cells } = tableRow(rowParts, COLUMNS);
  cells.link = el("a", "id");
  cells.id.append(cells.link);
  cells.badge = badge("");
  cells.state.append(cells.badge);
  cells.bar = progressBar();
  cells.progress.append(cells.bar.wrap);
  cells.groupLink = el("a", "group");
  cells.group.append(cells.groupLink);
  row.addEventListener("click", (event) => {
    if (event.target.closest("a, button") || String(window.getSelection())) return;
    location.hash = cells.link.getAttribute("href");
  });
  return row;
}

function updateRow(row, job) {
  const cells = rowParts.get(row);
  const classes = ["job", `state-${cssToken(job.state)}`];
  if (job.state !== "watching") classes.push("finished");
  if (job.status === "FAILED") classes.push("failed");
  row.className = classes.join(" ");
  cells.link.href = jobHref(job.id);
  setText(cells.link, job.id);
  setText(cells.name, dash(job.name));
  outcomeBadge(cells.badge, job);
  setText(cells.status, dash(job.status));
  setProgress(cells.bar, job.progress);
  setText(cells.eta, eta(job));
  cells.groupLink.hidden = !job.group;
  cells.group.classList.toggle("none", !job.group);
  if (job.group) {
    cells.groupLink.href = groupHref(job.group);
    setText(cells.groupLink, job.group);
  }
  deadlineText(cells.deadline, job);
  timeText(cells.polled, job.last_polled_at);
  setText(cells.error, errorSummary(job));
  cells.error.title = errorSummary(job, true);
}

export default {
  name: "jobs",
  title: "Jobs",
  live: true,
  keepsFilters: true,
  start() {
    $("jobs-filters").addEventListener("submit", (event) => event.preventDefault());
    for (const id of ["jobs-state", "jobs-group"]) {
      $(id).addEventListener("change", () => {
        app.keepFilters("jobs", filtersNow());
        app.refresh();
      });
    }
    $("jobs-search").addEventListener("input", () => {
      app.keepFilters("jobs", filtersNow());
      render();
    });
  },
  enter({ params }) {
    $("jobs-state").value = params.get("state") || "";
    $("jobs-group").value = params.get("group") || "";
    $("jobs-search").value = params.get("q") || "";
  },
  async load() {
    const state = $("jobs-state").value;
    const group = $("jobs-group").value.trim();
    const query = {};
    if (state) query.state = state;
    if (group) query.group = group;
    const found = await getAll("jobs", "jobs", query);
    return () => {
      jobs = found;
      render();
    };
  },
  reset() {
    jobs = null;
    $("jobs-table").tBodies[0].replaceChildren();
  },
};
