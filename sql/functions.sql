-- The rules of a desired-state change, in one place. store::migrate re-applies this file after
-- the migrations at every start-up that migrates (`serve` without --no-migrate, `zeroscale
-- migrate`), in one transaction under an advisory lock, so replicas starting together do not
-- race. Every statement is CREATE OR REPLACE: applying it twice changes nothing.
--
-- Change a rule here, never by restating a function in a migration. CREATE OR REPLACE cannot
-- change a function's parameters or result columns: for that, a migration drops the old
-- signature (as migrations/20261130000002_rollback.sql did) and this file creates the new one.
-- The migrations that created these functions before this file existed stay as they were
-- (sqlx checks that an applied migration never changes).

-- Enqueues a job, cancelling the queued job of the same target as superseded (at most one
-- queued job per target: jobs_one_queued_per_target). Enqueues of one target are serialised by
-- a transaction-level advisory lock, so the cancellation and the insert never race another
-- enqueuer. The one implementation behind store::jobs::enqueue and zs_record_change.
CREATE OR REPLACE FUNCTION zs_enqueue_job(
    p_kind         text,
    p_target       text,
    p_args         jsonb,
    p_max_attempts integer DEFAULT 20,
    p_scheduled_at timestamptz DEFAULT NULL
) RETURNS jobs LANGUAGE plpgsql AS $$
DECLARE
    j jobs%ROWTYPE;
BEGIN
    IF p_target IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('zeroscale.job.' || p_target, 0));
        UPDATE jobs SET state = 'cancelled', finalized_at = now(),
            errors = jobs.errors || jsonb_build_array(jsonb_build_object(
                'attempt', jobs.attempt, 'at', now(),
                'error', 'superseded by a newer job for this target', 'permanent', true))
        WHERE jobs.target = p_target AND jobs.state IN ('available', 'retryable');
    END IF;
    INSERT INTO jobs (kind, target, args, max_attempts, scheduled_at)
    VALUES (p_kind, p_target, p_args, p_max_attempts, COALESCE(p_scheduled_at, now()))
    RETURNING * INTO j;
    RETURN j;
END;
$$;


-- One statement per desired-state change. The API's write path used to take six round trips
-- (BEGIN, lock the target, lock the job key, enqueue, version + audit, COMMIT); on a 2-core
-- machine every round trip costs a backend wake-up, so a change now runs as one function call:
-- in autocommit when there is no Idempotency-Key, inside the caller's transaction when there is.
-- Semantics are those of api::changes (docs: shared/docs/api-and-jobs.md):
--   * the target row is locked (created on a first enable), which keeps versions gapless;
--   * If-Match (p_if_match: NULL none, -1 '*', n a version) is checked against the locked row;
--   * an identical change (same enabled flag and spec) writes nothing;
--   * otherwise: the target's queued, never-attempted reconcile job is retargeted at the new
--     version (else a new job supersedes whatever is queued), and the new version, its history
--     row and the `accepted` audit event are written.
-- Returns one row (OUT parameters, so no result set is materialised): outcome 'missing' when
-- the target does not exist and cannot be created here (a disable, or an enable with If-Match);
-- 'absent' when it does not exist and p_create is false (nothing written); otherwise 'stale',
-- 'unchanged' or 'accepted' with the target joined with its last job, as `store::targets` reads
-- it.
CREATE OR REPLACE FUNCTION zs_record_change(
    p_kind              target_kind,
    p_name              text,
    p_enabled           boolean,
    p_spec              jsonb,
    p_if_match          integer,
    p_job_kind          text,
    p_job_target        text,
    p_actor             text,
    p_on_behalf_of      text,
    p_source_ip         text,
    p_user_agent        text,
    p_request_id        text,
    p_create            boolean,
    p_rollback_to       integer,
    p_action            text,
    p_patch             jsonb,
    p_carry             text[],
    OUT outcome         text,
    OUT id              bigint,
    OUT kind            text,
    OUT name            text,
    OUT enabled         boolean,
    OUT version         integer,
    OUT spec            jsonb,
    OUT phase           text,
    OUT conditions      jsonb,
    OUT observed        jsonb,
    OUT last_job_id     bigint,
    OUT created_at      timestamptz,
    OUT updated_at      timestamptz,
    OUT job_state       job_state,
    OUT job_attempt     integer,
    OUT job_last_error  text
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    t        targets%ROWTYPE;
    created  boolean := false;
    v_spec   jsonb;
    v_ver    integer;
    v_job    bigint;
    v_action text;
    v_enabled boolean;
BEGIN
    SELECT * INTO t FROM targets WHERE targets.kind = p_kind AND targets.name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        IF p_enabled IS NOT TRUE OR p_if_match IS NOT NULL THEN
            outcome := 'missing';
            RETURN;
        END IF;
        IF NOT p_create THEN
            -- The caller checks something first (api::changes: the kind of a new target).
            outcome := 'absent';
            RETURN;
        END IF;
        INSERT INTO targets AS n (kind, name, enabled, version, spec)
        VALUES (p_kind, p_name, true, 1, p_spec)
        ON CONFLICT ON CONSTRAINT targets_kind_name_key DO NOTHING
        RETURNING * INTO t;
        IF FOUND THEN
            created := true;
        ELSE
            -- A concurrent first enable won; take its row like any other update.
            SELECT * INTO t FROM targets
            WHERE targets.kind = p_kind AND targets.name = p_name FOR UPDATE;
        END IF;
    END IF;

    v_enabled := COALESCE(p_enabled, t.enabled);
    v_spec := COALESCE(p_spec, t.spec);
    -- Keys the change keeps from the current spec (a keep-warm pin and a pause survive an
    -- enable's new spec), then keys it sets or, with a JSON null, removes.
    IF p_carry IS NOT NULL AND NOT created THEN
        v_spec := (v_spec - p_carry) || COALESCE(
            (SELECT jsonb_object_agg(k, t.spec -> k) FROM unnest(p_carry) AS k WHERE t.spec ? k),
            '{}'::jsonb);
    END IF;
    IF p_patch IS NOT NULL THEN
        v_spec := (v_spec || p_patch)
            - ARRAY(SELECT e.key FROM jsonb_each(p_patch) AS e WHERE e.value = 'null'::jsonb);
    END IF;
    IF NOT created AND p_if_match IS NOT NULL AND p_if_match >= 0 AND p_if_match <> t.version THEN
        outcome := 'stale';
    ELSIF NOT created AND t.enabled = v_enabled AND t.spec = v_spec THEN
        outcome := 'unchanged';
    ELSE
        v_ver := CASE WHEN created THEN 1 ELSE t.version + 1 END;
        -- A worker that claimed the job first has moved it to 'running' (and a claim in flight
        -- holds its row: this waits, then sees it running), so it no longer matches.
        SELECT jobs.id INTO v_job FROM jobs
        WHERE jobs.target = p_job_target AND jobs.kind = p_job_kind
          AND jobs.state = 'available' AND jobs.attempt = 0 AND NOT jobs.args ? 'reason'
        FOR KEY SHARE;
        IF NOT FOUND THEN
            v_job := (zs_enqueue_job(p_job_kind, p_job_target,
                      jsonb_build_object('kind', p_kind, 'name', p_name))).id;
        END IF;
        v_action := COALESCE(p_action, CASE
            WHEN p_rollback_to IS NOT NULL THEN 'rollback'
            WHEN NOT v_enabled THEN 'disable'
            WHEN created OR NOT t.enabled THEN 'enable'
            ELSE 'update' END);
        WITH changed AS (
            UPDATE targets SET version = v_ver, enabled = v_enabled, spec = v_spec,
                last_job_id = v_job, phase = 'pending', updated_at = now()
            WHERE targets.id = t.id
        )
        INSERT INTO audit_log (actor, on_behalf_of, source_ip, user_agent, action, target_kind,
                               target_name, version, request_id, job_id, before, after, outcome)
        VALUES (p_actor, p_on_behalf_of, p_source_ip, p_user_agent, v_action, p_kind, p_name,
                v_ver, p_request_id, v_job,
                CASE WHEN created THEN NULL ELSE jsonb_build_object(
                    'version', t.version, 'enabled', t.enabled, 'spec', t.spec) END,
                jsonb_build_object('version', v_ver, 'enabled', v_enabled, 'spec', v_spec)
                    || CASE WHEN p_rollback_to IS NULL THEN '{}'::jsonb
                            ELSE jsonb_build_object('rollback_to', p_rollback_to) END,
                'accepted');
        -- Everything the answer needs is known here; no need to read the rows back. The job is
        -- queued and never attempted, whichever branch above supplied it.
        outcome := 'accepted';
        id := t.id; kind := p_kind::text; name := p_name; enabled := v_enabled;
        version := v_ver; spec := v_spec; phase := 'pending'; conditions := t.conditions;
        observed := t.observed; last_job_id := v_job; created_at := t.created_at;
        updated_at := now(); job_state := 'available'; job_attempt := 0;
        RETURN;
    END IF;

    -- Stale or unchanged: the target as it is, with its last job.
    SELECT x.id, x.kind::text, x.name, x.enabled, x.version, x.spec, x.phase::text,
           x.conditions, x.observed, x.last_job_id, x.created_at, x.updated_at,
           j.state, j.attempt, j.errors->-1->>'error'
    INTO id, kind, name, enabled, version, spec, phase, conditions, observed, last_job_id,
         created_at, updated_at, job_state, job_attempt, job_last_error
    FROM targets x LEFT JOIN jobs j ON j.id = x.last_job_id
    WHERE x.id = t.id;
END;
$$;


-- The signature before wake, keep-warm and pause (no action, patch or carried keys), for
-- replicas still running an earlier build during a rolling deploy. Drop it in a later release.
CREATE OR REPLACE FUNCTION zs_record_change(
    p_kind target_kind, p_name text, p_enabled boolean, p_spec jsonb, p_if_match integer,
    p_job_kind text, p_job_target text, p_actor text, p_on_behalf_of text, p_source_ip text,
    p_user_agent text, p_request_id text, p_create boolean, p_rollback_to integer,
    OUT outcome         text,
    OUT id              bigint,
    OUT kind            text,
    OUT name            text,
    OUT enabled         boolean,
    OUT version         integer,
    OUT spec            jsonb,
    OUT phase           text,
    OUT conditions      jsonb,
    OUT observed        jsonb,
    OUT last_job_id     bigint,
    OUT created_at      timestamptz,
    OUT updated_at      timestamptz,
    OUT job_state       job_state,
    OUT job_attempt     integer,
    OUT job_last_error  text
) LANGUAGE sql AS $$
    SELECT * FROM zs_record_change(p_kind, p_name, p_enabled, p_spec, p_if_match, p_job_kind,
        p_job_target, p_actor, p_on_behalf_of, p_source_ip, p_user_agent, p_request_id, p_create,
        p_rollback_to, NULL::text, NULL::jsonb, NULL::text[])
$$;


-- The signature before rollbacks, for replicas still running that build during a rolling
-- deploy: the same change, never a rollback. Drop it in a later release.
CREATE OR REPLACE FUNCTION zs_record_change(
    p_kind target_kind, p_name text, p_enabled boolean, p_spec jsonb, p_if_match integer,
    p_job_kind text, p_job_target text, p_actor text, p_on_behalf_of text, p_source_ip text,
    p_user_agent text, p_request_id text, p_create boolean,
    OUT outcome         text,
    OUT id              bigint,
    OUT kind            text,
    OUT name            text,
    OUT enabled         boolean,
    OUT version         integer,
    OUT spec            jsonb,
    OUT phase           text,
    OUT conditions      jsonb,
    OUT observed        jsonb,
    OUT last_job_id     bigint,
    OUT created_at      timestamptz,
    OUT updated_at      timestamptz,
    OUT job_state       job_state,
    OUT job_attempt     integer,
    OUT job_last_error  text
) LANGUAGE sql AS $$
    SELECT * FROM zs_record_change(p_kind, p_name, p_enabled, p_spec, p_if_match, p_job_kind,
        p_job_target, p_actor, p_on_behalf_of, p_source_ip, p_user_agent, p_request_id, p_create,
        NULL::integer)
$$;
