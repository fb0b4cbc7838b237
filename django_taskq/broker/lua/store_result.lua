-- store_result.lua: write a task's state, forward only, and wake whoever waits for it.
--
-- Every key is of one task (one hash tag).
-- KEYS[1]  result    the task's result record (JSON, "status" first)
-- KEYS[2]  waiters   set of wake-up list names, one per AsyncResult.get() waiting
-- ARGV[1]  record    the new record (JSON, starting {"status":"<STATE>")
-- ARGV[2]  ttl ms    how long to keep it
-- ARGV[3]  final     1 when the new state is final (SUCCESS, FAILURE, REVOKED)
--
-- States only move forward: a record whose state is final (SUCCESS,
-- FAILURE, REVOKED) is kept, and the write is refused, with two exceptions
-- that keep the outcome a worker actually reached:
--   a record marked "provisional" (revoke() of a task not known to have
--   finished) gives way to a final state;
--   nothing else does: the first final state stays, so a task run again
--   after a crash converges on the outcome already stored.
-- A non-final state (PENDING, RECEIVED, STARTED, RETRY, a custom progress
-- state) never replaces a final one.
-- A waiter adds its list to the set before it reads the result; this writes
-- the result before it reads the set, in one atomic step, so no wake-up is
-- missed. The wake-up lists share the task's tag (keys.wakeup).
--
-- Returns {1} when stored, {0, current record} when refused.

local current = redis.call('GET', KEYS[1])
if current then
  local state = string.match(current, '^{"status":"([^"]*)"')
  if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then
    local provisional = string.find(current, '"provisional":true', 1, true)
    if not (provisional and ARGV[3] == '1') then
      return {0, current}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
for _, list in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('RPUSH', list, 1)
  redis.call('PEXPIRE', list, 60000)
end
return {1}
