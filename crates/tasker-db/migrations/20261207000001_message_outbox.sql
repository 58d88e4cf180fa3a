-- The message outbox (ADR 011): for queue providers that cannot join a
-- PostgreSQL transaction (RabbitMQ), a send inside a state change is a row
-- here, written in that same transaction. After the commit the sender
-- relays its rows to the broker and deletes them; rows a crashed process
-- left behind are relayed by the orchestration leader's sweep. A rolled-back
-- change leaves no row, so no pointer is ever sent for it.
CREATE TABLE tasker.message_outbox (
    id          bigserial PRIMARY KEY,
    queue_name  text        NOT NULL,
    payload     jsonb       NOT NULL,
    delay_ms    bigint      NOT NULL DEFAULT 0 CHECK (delay_ms >= 0),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The sweep takes the oldest rows first.
CREATE INDEX message_outbox_created_at_idx ON tasker.message_outbox (created_at);
