-- store_result.lua: write tasks' states and wake whoever waits for them.
--
-- KEYS     two a record: KEYS[2i-1] result key, KEYS[2i] waiters set
--          result   result key of the task
--          waiters  set of wake-up list names, one per AsyncResult.get()
--                   waiting for the task
-- ARGV     ARGV[1..n]  the result records (JSON), one a task, in KEYS order
--          ARGV[n+1]   ttl ms: how long to keep the records
--
-- One record (2 keys, 2 args) is the common call; a worker flush stores a
-- whole batch in one call. A waiter adds its list to the set before it reads
-- the result; this script writes the result before it reads the set, in one
-- atomic step, so no wake-up is ever missed. Each waiter has a list of its
-- own, so several waiters of one task all wake. (The wake-up lists are
-- named in the set, not in KEYS: like every script here, this assumes one
-- Redis, not a cluster.) Returns the record count.

local n = #ARGV - 1
local ttl = tonumber(ARGV[#ARGV])
for i = 1, n do
  redis.call('SET', KEYS[2 * i - 1], ARGV[i], 'PX', ttl)
  for _, list in ipairs(redis.call('SMEMBERS', KEYS[2 * i])) do
    redis.call('RPUSH', list, 1)
    redis.call('PEXPIRE', list, 60000)
  end
end
return n
