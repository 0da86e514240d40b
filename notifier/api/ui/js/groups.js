// The Groups view (issue 21.2): each group with a progress bar (members ended / total),
// its counts, ETA and deadline (red once at risk or late), and its members; clicking a
// group opens Jobs filtered by it.

import { getAll } from "./api.js";
import {
  $,
  badge,
  dash,
  deadlineText,
  el,
  eta,
  groupHref,
  jobHref,
  progressBar,
  setBadge,
  setProgress,
  setText,
  syncRows,
  tableRow,
} from "./format.js";

const COLUMNS = ["id", "name", "state", "progress", "counts", "eta", "deadline", "members"];
const MEMBERS_SHOWN = 5;
const rowParts = new WeakMap();

function build(section) {
  const title = el("h1", "", "Groups");
  title.id = "groups-title";
  section.setAttribute("aria-labelledby", title.id);
  const meta = el("p", "meta");
  meta.id = "groups-meta";
  const table = el("table", "data");
  table.id = "groups-table";
  const head = table.createTHead().insertRow();
  for (const name of ["Group", "Name", "State", "Ended", "Counts", "ETA", "Deadline",
                      "Members"]) {
    const th = el("th", "", name);
    th.scope = "col";
    head.append(th);
  }
  table.createTBody();
  const wrap = el("div", "table-wrap");
  wrap.append(table);
  const empty = el("p", "empty", "No groups.");
  empty.id = "groups-empty";
  section.append(title, meta, wrap, empty);
}

function createRow() {
  const { row, cells } = tableRow(rowParts, COLUMNS);
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
  return row;
}

function counts(group) {
  const c = group.counts || {};
  const parts = ["delivered", "failed", "expired", "running"]
    .filter((key) => c[key])
    .map((key) => `${c[key]} ${key}`);
  return parts.join(", ") || "no members";
}

function updateRow(row, group, members) {
  const cells = rowParts.get(row);
  row.className = `group state-${group.state}`;
  cells.link.href = groupHref(group.id);
  setText(cells.link, group.id);
  setText(cells.name, dash(group.name));
  setBadge(cells.badge, group.state);
  const ended = group.total - (group.counts?.running || 0);
  setProgress(cells.bar, group.total ? (100 * ended) / group.total : null);
  setText(cells.bar.label, `${ended}/${group.total}`);
  setText(cells.counts, counts(group));
  setText(cells.eta, eta(group));
  deadlineText(cells.deadline, group);
  const shown = members.slice(0, MEMBERS_SHOWN).map((job) => {
    const link = el("a", "member", job.id);
    link.href = jobHref(job.id);
    link.title = dash(job.status);
    return link;
  });
  if (members.length > MEMBERS_SHOWN) {
    shown.push(el("span", "more", `+${members.length - MEMBERS_SHOWN} more`));
  }
  cells.members.replaceChildren(...shown);
}

function render(groups, jobs) {
  const byGroup = new Map();
  for (const job of jobs.items) {
    if (!job.group) continue;
    if (!byGroup.has(job.group)) byGroup.set(job.group, []);
    byGroup.get(job.group).push(job);
  }
  syncRows($("groups-table").tBodies[0], groups.items, (g) => g.id, createRow, (row, g) =>
    updateRow(row, g, byGroup.get(g.id) || []));
  $("groups-empty").hidden = groups.items.length > 0;
  setText($("groups-meta"), `${groups.items.length} groups`);
}

export default {
  name: "groups",
  title: "Groups",
  live: true,
  start() {
    build($("view-groups"));
  },
  async load() {
    const [groups, jobs] = await Promise.all([getAll("groups", "groups"), getAll("jobs", "jobs")]);
    return () => render(groups, jobs);
  },
  reset() {
    $("groups-table").tBodies[0].replaceChildren();
  },
};
