-- Wake, keep-warm, pause and resume are versions too (each an accepted change of the spec's
-- `keep_warm` or `pause`), as is zeroscale lifting an expired pause or pin.
CREATE OR REPLACE VIEW target_versions AS
SELECT t.id AS target_id, a.version, (a.after ->> 'enabled')::boolean AS enabled,
       a.after -> 'spec' AS spec, a.actor, a.on_behalf_of, a.request_id, a.job_id,
       a.at AS created_at, a.action, (a.after ->> 'rollback_to')::integer AS rollback_to
FROM audit_log a
JOIN targets t ON t.kind = a.target_kind AND t.name = a.target_name
WHERE a.outcome = 'accepted'
  AND a.action IN ('enable', 'update', 'disable', 'rollback', 'wake', 'keep_warm', 'unpin',
                   'pause', 'resume', 'keep_warm_expired');
