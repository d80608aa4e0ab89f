-- Desired state, versions, API tokens, idempotency keys and the append-only audit log.

CREATE TYPE target_kind AS ENUM ('component', 'endpoint_variant');
CREATE TYPE target_phase AS ENUM ('pending', 'applying', 'ready', 'failed', 'disabled');

-- One row per thing zeroscale manages: its current desired state and what was last observed.
CREATE TABLE targets (
    id           bigserial    PRIMARY KEY,
    kind         target_kind  NOT NULL,
    -- Component name, or 'endpoint/<endpoint>/variant/<variant>' for variants.
    name         text         NOT NULL,
    enabled      boolean      NOT NULL,
    version      integer      NOT NULL CHECK (version >= 1),
    spec         jsonb        NOT NULL,
    phase        target_phase NOT NULL DEFAULT 'pending',
    -- [{type, status, reason, message, at}] as the reconciler last saw them.
    conditions   jsonb        NOT NULL DEFAULT '[]'::jsonb,
    -- AWS objects zeroscale owns (scalable target, policy ARNs, alarm), resolved max capacity.
    observed     jsonb        NOT NULL DEFAULT '{}'::jsonb,
    last_job_id  bigint,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (kind, name)
);
CREATE INDEX targets_kind_phase ON targets (kind, phase, name);

-- Every accepted change: gapless versions per target.
CREATE TABLE target_versions (
    target_id    bigint      NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    version      integer     NOT NULL,
    enabled      boolean     NOT NULL,
    spec         jsonb       NOT NULL,
    actor        text        NOT NULL,
    on_behalf_of text,
    request_id   text,
    job_id       bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_id, version)
);

-- Bearer tokens: only a SHA-256 of the secret is stored.
CREATE TABLE api_tokens (
    id           bigserial   PRIMARY KEY,
    name         text        NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    -- The public part of the secret, used to find the row before the constant-time compare.
    prefix       text        NOT NULL UNIQUE,
    secret_hash  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (scopes <@ ARRAY['read', 'write']::text[])
);

-- Idempotency keys, claimed in the same transaction as the change they protect.
CREATE TABLE idempotency_keys (
    actor         text        NOT NULL,
    method        text        NOT NULL,
    path          text        NOT NULL,
    key           text        NOT NULL,
    body_sha256   bytea       NOT NULL,
    status        integer     NOT NULL,
    response      jsonb       NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, method, path, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Append-only audit log: who, on whose behalf, what, when, before/after, request id, outcome.
CREATE TABLE audit_log (
    id              bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor           text        NOT NULL,
    on_behalf_of    text,
    source_ip       text,
    user_agent      text,
    action          text        NOT NULL,
    target_kind     target_kind NOT NULL,
    target_name     text        NOT NULL,
    version         integer,
    request_id      text,
    job_id          bigint,
    before          jsonb,
    after           jsonb,
    outcome         text        NOT NULL,
    error           text,
    aws_request_ids jsonb       NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_name, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
-- ENABLE ALWAYS: the triggers fire even with session_replication_role = replica.
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_update_delete;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
