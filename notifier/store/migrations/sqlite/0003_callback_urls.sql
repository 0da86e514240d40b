-- Jobs registered over the HTTP API may carry their own webhook URL; each delivery to
-- it keeps the URL it was created for.
ALTER TABLE jobs ADD COLUMN callback_url TEXT;
ALTER TABLE deliveries ADD COLUMN target_url TEXT;
