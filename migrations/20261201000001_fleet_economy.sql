-- Fleet economy (issue 16).

-- Live replicas: each one heartbeats here and takes an equal share of the account's AWS call
-- budget (--aws-rate-limit), so three replicas spend one budget, not three.
CREATE TABLE replicas (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- The fleet observation pass: how many passes ran (it picks which targets' policies a pass
-- reads) and the newest scaling activity already seen (the next pass reads only newer ones).
CREATE TABLE observation (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    passes bigint NOT NULL DEFAULT 0,
    activities_seen_until timestamptz,
    last_pass_at timestamptz
);
INSERT INTO observation DEFAULT VALUES;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'zeroscale_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON replicas, observation TO zeroscale_app;
        GRANT USAGE, SELECT ON SEQUENCE replicas_id_seq TO zeroscale_app;
    END IF;
END;
$$;
