-- Timeline (issue 18): an append-only event table per target, built by the observation pass
-- from AWS's scaling activities and alarm states, and by runs from zeroscale's own actions.

CREATE TABLE target_events (
    id          bigserial   PRIMARY KEY,
    target_id   bigint      NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN (
                    'enabled', 'disabled', 'scaled_to_zero', 'request_at_zero', 'alarm_fired',
                    'wake_started', 'capacity_in_service', 'wake_failed',
                    'scheduled_action_fired', 'paused', 'resumed', 'drift_repaired')),
    -- When it happened, on AWS's clock where AWS said so.
    at          timestamptz NOT NULL,
    -- Where it came from, for de-duplication: 'activity:<ActivityId>', 'alarm:<name>@<time>',
    -- 'version:<n>' or 'job:<id>'.
    source      text        NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (target_id, kind, source)
);
CREATE INDEX target_events_target_at ON target_events (target_id, at, id);
CREATE INDEX target_events_at ON target_events (at, id);

-- The oldest scaling activity a pass saw still in progress: the next pass reads back to it,
-- so that its end (a wake's capacity in service, or its failure) is seen.
ALTER TABLE observation ADD COLUMN open_activities_since timestamptz;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        -- Append-only for the service: no UPDATE or DELETE.
        GRANT SELECT, INSERT ON target_events TO zeroscale_app;
        GRANT USAGE, SELECT ON SEQUENCE target_events_id_seq TO zeroscale_app;
    END IF;
END;
$$;
