-- Hardening (issue 14).
--
-- The `audit` scope: a token holding it sees callers' addresses and user agents in GET /audit.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scopes_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scopes_check
    CHECK (scopes <@ ARRAY['read', 'write', 'audit']::text[]);

-- The claim takes due jobs in the order they were enqueued (id), so a rescued, released or
-- retried job keeps its place instead of going behind everything enqueued since.
DROP INDEX jobs_claimable;
CREATE INDEX jobs_queue_order ON jobs (id) WHERE state IN ('available', 'retryable');
