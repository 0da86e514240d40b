-- An event may happen more than once (a job stalls again; a callback pauses again):
-- `occurrence` numbers them, so each is its own delivery while a repeated poll still
-- adds nothing. Operational alerts belong to no job: job_id may be NULL.
ALTER TABLE deliveries ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE deliveries ADD COLUMN occurrence integer NOT NULL DEFAULT 0;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_job_id_callback_event_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_once
    UNIQUE (job_id, callback, event, occurrence);
