-- wait_result.lua: register a waiter of a task's result, and wake it at once if it is ready.
--
-- AsyncResult.get() sends this and its BLPOP on the wake-up list in one
-- pipeline, so a wait is one round trip: the BLPOP returns the record
-- pushed here when the task has finished already, or the one
-- store_result.lua pushes when it stores a state later.
--
-- KEYS[1]  result   the task's result record
-- KEYS[2]  waiters  set of the wake-up lists of the task's waiters
-- KEYS[3]  wakeup   this waiter's wake-up list
-- ARGV[1]  ttl ms   how long the waiters set is kept (past this wait's slice)
--
-- The keys share the task's hash tag. Returns the record (nil if none).

redis.call('SADD', KEYS[2], KEYS[3])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]))
local current = redis.call('GET', KEYS[1])
if current then
  local state = string.match(current, '^{"status":"([^"]*)"')
  if not state then
    -- Not as django_taskq writes records (one kept from 0.1, say): parse it.
    local ok, decoded = pcall(cjson.decode, current)
    if ok and type(decoded) == 'table' and type(decoded['status']) == 'string' then
      state = decoded['status']
    end
  end
  if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then
    redis.call('RPUSH', KEYS[3], current)
    redis.call('PEXPIRE', KEYS[3], 60000)
  end
end
return current
