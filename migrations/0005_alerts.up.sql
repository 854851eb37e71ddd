-- Alerts kept by the notification consumer: one row per active problem, bumped (count,
-- last_seen) by repeats of the same event instead of duplicated.
CREATE TABLE alerts (
    id         bigserial PRIMARY KEY,
    dedupe_key text        NOT NULL,
    severity   text        NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    status     text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'resolved')),
    source     text        NOT NULL,
    message    text        NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}',
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    count      bigint      NOT NULL DEFAULT 1
);
-- At most one open (not resolved) alert per key; a resolved one is history.
CREATE UNIQUE INDEX alerts_open_key ON alerts (dedupe_key) WHERE status <> 'resolved';
CREATE INDEX alerts_status_severity_idx ON alerts (status, severity);
