-- Issue 21.2: groups of jobs notified as one. notify/events: JSON lists (NULL: none /
-- all four); labels: JSON object; metadata: the caller's JSON text; times: Unix seconds.
-- state: open | sealed | completed | failed; source: config | api | job (created by a
-- job naming an undeclared group). Members are the jobs whose group_id is the id.
CREATE TABLE job_groups (
    id TEXT PRIMARY KEY,
    name TEXT,
    notify TEXT,
    events TEXT,
    expect INTEGER,
    deadline REAL,
    fail_fast INTEGER NOT NULL DEFAULT 0,
    labels TEXT,
    metadata TEXT,
    callback_url TEXT,
    source TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    sealed_at REAL,
    ended_at REAL,
    at_risk_at REAL,
    late_at REAL
);
CREATE INDEX job_groups_order ON job_groups (created_at, id);
-- The group deadline sweep's probe: running groups whose group.late is not recorded.
CREATE INDEX job_groups_deadline ON job_groups (deadline)
    WHERE deadline IS NOT NULL AND late_at IS NULL AND state IN ('open', 'sealed');
-- Groups that jobs named before groups existed.
INSERT INTO job_groups (id, source, state, created_at, updated_at)
SELECT group_id, 'job', 'open', min(registered_at), min(registered_at) FROM jobs
WHERE group_id IS NOT NULL GROUP BY group_id;
