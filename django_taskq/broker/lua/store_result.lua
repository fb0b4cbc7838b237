-- store_result.lua: write tasks' states, forward only, and wake whoever waits for them.
--
-- KEYS     two a record: KEYS[2i-1] result, KEYS[2i] waiters, of the same task
--          result   the task's result record (JSON, "status" first)
--          waiters  set of wake-up list names, one per AsyncResult.get() waiting
-- ARGV[1]  ttl ms     how long to keep the records
-- ARGV     then two a record: ARGV[2i] the record (JSON, starting
--          {"status":"<STATE>"), ARGV[2i+1] 1 when its state is final
--          (SUCCESS, FAILURE, REVOKED), else 0
--
-- The keys of one record share its task's hash tag. On Redis Cluster each
-- call carries the records of one slot (broker/topology.py groups them);
-- on one Redis or Sentinel a worker's flush stores a whole batch in one call.
--
-- States only move forward: a record whose state is final is kept and the
-- write refused, except that a record marked "provisional" (written by
-- revoke() for a task not known to have finished) gives way to a final
-- state. So the first final state stays, and a task run again after a
-- crash converges on the outcome already stored. A non-final state
-- (PENDING, RECEIVED, STARTED, RETRY, a custom progress state) never
-- replaces a final one.
-- A waiter adds its list to the set before it reads the result; this writes
-- the result before it reads the set, in one atomic step, so no wake-up is
-- missed. The wake-up lists share the task's tag (keys.wakeup).
--
-- Returns one item a record: 1 when stored, else the record that was kept.

local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local result, waiters = KEYS[2 * i - 1], KEYS[2 * i]
  local record, final = ARGV[2 * i], ARGV[2 * i + 1]
  local current = redis.call('GET', result)
  local keep = false
  if current then
    local state = string.match(current, '^{"status":"([^"]*)"')
    if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then
      keep = not (final == '1' and string.find(current, '"provisional":true', 1, true))
    end
  end
  if keep then
    out[i] = current
  else
    redis.call('SET', result, record, 'PX', ttl)
    for _, list in ipairs(redis.call('SMEMBERS', waiters)) do
      redis.call('RPUSH', list, 1)
      redis.call('PEXPIRE', list, 60000)
    end
    out[i] = 1
  end
end
return out
