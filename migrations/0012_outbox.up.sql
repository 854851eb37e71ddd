-- Events that cannot be lost (issue 12): the transaction that changes a file's state (or
-- records a dead item, or a recovery) writes its event here, so no event is announced for
-- work that did not commit and none is lost after a commit. The relay (in the notifications
-- role) publishes unsent events with confirms and marks them sent; the notification
-- consumer marks an event alerted in the transaction that raises its alert, so an event
-- published twice raises nothing twice.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    event      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    alerted_at timestamptz
);
-- The relay's work list stays as small as what is unsent.
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
