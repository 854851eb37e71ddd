-- Every webhook delivery attempt series for an alert: where, how many tries, the outcome.
CREATE TABLE webhook_deliveries (
    id           bigserial PRIMARY KEY,
    alert_id     bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    url          text        NOT NULL,
    attempts     integer     NOT NULL,
    status_code  integer,
    delivered    boolean     NOT NULL,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_alert_idx ON webhook_deliveries (alert_id);
