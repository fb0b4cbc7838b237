-- store_result.lua: write tasks' states and wake whoever waits for them.
--
-- KEYS     three a record: KEYS[3i-2] result, KEYS[3i-1] waiter, KEYS[3i] notify
--          result   result key of the task
--          waiter   flag set by AsyncResult.get() while it waits
--          notify   list AsyncResult.get() blocks on (BLPOP)
-- ARGV     ARGV[1..n]  the result records (JSON), one a task, in KEYS order
--          ARGV[n+1]   ttl ms: how long to keep the records
--
-- One record (3 keys, 2 args) is the common call; a worker flush stores a
-- whole batch in one call. The waiter sets KEYS[3i-1] before reading
-- KEYS[3i-2]; this script writes KEYS[3i-2] before testing KEYS[3i-1], in
-- one atomic step, so no wake-up is ever missed. Returns the record count.

local n = #ARGV - 1
local ttl = tonumber(ARGV[#ARGV])
for i = 1, n do
  local k = 3 * i
  redis.call('SET', KEYS[k - 2], ARGV[i], 'PX', ttl)
  if redis.call('EXISTS', KEYS[k - 1]) == 1 then
    redis.call('RPUSH', KEYS[k], 1)
    redis.call('PEXPIRE', KEYS[k], 60000)
  end
end
return n
