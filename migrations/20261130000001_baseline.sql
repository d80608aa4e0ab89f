-- What AWS held for a target before zeroscale's first write to it, captured once, durably,
-- before that write (issue "Real-AWS behaviour", defect 1). Disable restores it, or deregisters
-- the scalable target when there was none. NULL: not captured yet (or cleared by a completed
-- disable, so that a later enable captures afresh).
--   {"existed": false}                             no scalable target before zeroscale
--   {"existed": true, "min": 1, "max": 3}          the target's capacities before zeroscale
--   {"existed": true, "unknown": true}             a target already carrying zeroscale's objects
ALTER TABLE targets ADD COLUMN baseline jsonb;

-- Targets enabled by an earlier zeroscale kept the capacity they observed at the first enable in
-- observed.original_capacity. A minimum of 0 may be zeroscale's own write read back by a retried
-- first enable; only a positive minimum is trusted. The rest are captured as "unknown" on their
-- next run (their target carries zeroscale's policies).
UPDATE targets
   SET baseline = jsonb_build_object('existed', true,
                                     'min', (observed->'original_capacity'->>0)::int,
                                     'max', (observed->'original_capacity'->>1)::int)
 WHERE jsonb_typeof(observed->'original_capacity') = 'array'
   AND (observed->'original_capacity'->>0)::int > 0;
