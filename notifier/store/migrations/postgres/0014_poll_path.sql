-- The poll path (issue 25): a claim changes only lease columns, none of them indexed any
-- more, so PostgreSQL can write it as a heap-only (HOT) update beside the old row, with
-- no new entry in any index; fillfactor leaves room on each page for it (new pages).
-- Renewal finds the leases a daemon holds by the ids it claimed (primary key), and a
-- clean stop's give-back scans the table once.
DROP INDEX IF EXISTS jobs_leased;
ALTER TABLE jobs SET (fillfactor = 70);
