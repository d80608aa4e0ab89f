-- Notifications (issue 18): webhook subscriptions and their delivery log. Each delivery is
-- sent by a durable `webhook_delivery` job (at least once, retried with backoff).

CREATE TABLE webhooks (
    id                bigserial   PRIMARY KEY,
    url               text        NOT NULL,
    kinds             text[]      NOT NULL CHECK (cardinality(kinds) > 0),
    -- Only targets whose labels contain these (NULL: every target).
    labels            jsonb,
    format            text        NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    slow_wake_seconds integer     NOT NULL DEFAULT 300,
    not_at_zero_days  integer     NOT NULL DEFAULT 7,
    -- The signing secret, sealed (AES-256-GCM under --secrets-key); never stored in the clear.
    secret_nonce      bytea       NOT NULL,
    secret_sealed     bytea       NOT NULL,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              bigserial   PRIMARY KEY,
    webhook_id      bigint      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- What it reports, once per webhook: '<kind>:<target id>:<source>'.
    subject         text        NOT NULL,
    kind            text        NOT NULL,
    target_id       bigint      REFERENCES targets (id) ON DELETE SET NULL,
    payload         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    UNIQUE (webhook_id, subject)
);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id DESC);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON webhooks, webhook_deliveries TO zeroscale_app;
        GRANT USAGE, SELECT ON SEQUENCE webhooks_id_seq, webhook_deliveries_id_seq TO zeroscale_app;
    END IF;
END;
$$;
