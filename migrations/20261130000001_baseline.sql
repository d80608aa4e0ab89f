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
-- first enable; only a positive minimum is trusted. A null is ambiguous (no target before, or a
-- first run that failed its preflight and was never captured again), so it is not trusted either.
-- The rest are captured on their next run: "unknown" when their target carries zeroscale's
-- objects (disable then keeps it registered at restore_min_capacity, the old behaviour, never
-- MinCapacity 0 without a wake-up alarm). Disabled targets start afresh at their next enable.
UPDATE targets
   SET baseline = jsonb_build_object('existed', true,
                                     'min', (observed->'original_capacity'->>0)::int,
                                     'max', (observed->'original_capacity'->>1)::int)
 WHERE enabled
   AND jsonb_typeof(observed->'original_capacity') = 'array'
   AND (observed->'original_capacity'->>0)::int > 0;
