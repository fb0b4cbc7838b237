-- store_result.lua: write a task's state and wake whoever waits for it.
--
-- KEYS[1]  result   result key of the task
-- KEYS[2]  waiter   flag set by AsyncResult.get() while it waits
-- KEYS[3]  notify   list AsyncResult.get() blocks on (BLPOP)
-- ARGV[1]  payload  the result record (JSON)
-- ARGV[2]  ttl ms   how long to keep the record
--
-- The waiter sets KEYS[2] before reading KEYS[1]; this script writes KEYS[1]
-- before testing KEYS[2], in one atomic step, so no wake-up is ever missed.

redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RPUSH', KEYS[3], 1)
  redis.call('PEXPIRE', KEYS[3], 60000)
end
return 1
