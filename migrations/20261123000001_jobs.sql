-- Durable job queue (River's state machine is the model; see shared/docs/api-and-jobs.md).
CREATE TYPE job_state AS ENUM ('available', 'running', 'retryable', 'completed', 'discarded', 'cancelled');

CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    kind          text        NOT NULL,
    -- What the job acts on (e.g. 'component/my-ic'); NULL for jobs with no target.
    target        text,
    args          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state         job_state   NOT NULL DEFAULT 'available',
    attempt       integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL DEFAULT 20 CHECK (max_attempts > 0),
    -- One entry per failed attempt: {"attempt", "at", "error", "permanent"}.
    errors        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- What the handler reports (steps done, AWS request ids), updated while it runs.
    output        jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    scheduled_at  timestamptz NOT NULL DEFAULT now(),
    attempted_at  timestamptz,
    finalized_at  timestamptz,
    lease_owner   text,
    lease_until   timestamptz,
    CONSTRAINT jobs_lease_only_when_running
        CHECK ((state = 'running') = (lease_owner IS NOT NULL AND lease_until IS NOT NULL)),
    CONSTRAINT jobs_finalized_when_final
        CHECK ((state IN ('completed', 'discarded', 'cancelled')) = (finalized_at IS NOT NULL))
);

-- At most one running job per target, enforced by the database rather than process memory.
CREATE UNIQUE INDEX jobs_one_running_per_target ON jobs (target)
    WHERE state = 'running' AND target IS NOT NULL;

-- At most one queued job per target: a newer desired version supersedes a queued older one
-- (the enqueue cancels it) instead of piling up behind it.
CREATE UNIQUE INDEX jobs_one_queued_per_target ON jobs (target)
    WHERE state IN ('available', 'retryable') AND target IS NOT NULL;

-- The claim query's scan: queued jobs in schedule order.
CREATE INDEX jobs_claimable ON jobs (scheduled_at, id) WHERE state IN ('available', 'retryable');
-- The rescuer's scan: running jobs by lease expiry.
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
-- Retention's scan: finished jobs by age.
CREATE INDEX jobs_finalized ON jobs (finalized_at) WHERE finalized_at IS NOT NULL;
CREATE INDEX jobs_target ON jobs (target, id);
