-- Tamper evidence for the audit log, and a service role that owns nothing (issue 14).
--
-- audit_chain seals audit events in order: position n holds sha256(hash(n-1) || the event's
-- canonical form, computed by zeroscale: store::audit::canonical). The workers seal new events
-- every maintenance tick; GET /audit/verify recomputes the chain. Editing an event, deleting
-- one, or rewriting the chain shows up there, unless the whole chain after it is rewritten too,
-- which the sealed head logged at every tick (shipped elsewhere with the logs) gives away.
-- The chain is as append-only as the log itself.
CREATE TABLE audit_chain (
    position   bigint      PRIMARY KEY CHECK (position >= 1),
    event_id   bigint      NOT NULL UNIQUE REFERENCES audit_log (id),
    prev_hash  bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    sealed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_chain_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_chain_no_truncate
    BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_no_update_delete;
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_no_truncate;

-- The role the service runs as. Tables belong to whoever runs the migrations (the owner role);
-- the service's login role is granted zeroscale_app and can read and write what it must, but
-- cannot alter, disable triggers on, update or delete from the audit log or its chain, since
-- only a table's owner (or a superuser) can. Creating the role needs CREATEROLE: without it the
-- migration goes on and a DBA creates it (docs in the README, "Database roles").
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        CREATE ROLE zeroscale_app NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL; -- another database's migration won
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'zeroscale: cannot create role zeroscale_app (no CREATEROLE); create it, then re-run the grants of migration 20261130000004';
END;
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        GRANT USAGE ON SCHEMA public TO zeroscale_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON targets, jobs, api_tokens, idempotency_keys
            TO zeroscale_app;
        GRANT SELECT, INSERT ON audit_log, audit_chain TO zeroscale_app;
        GRANT SELECT ON target_versions, _sqlx_migrations TO zeroscale_app;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO zeroscale_app;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO zeroscale_app;
    END IF;
END;
$$;
