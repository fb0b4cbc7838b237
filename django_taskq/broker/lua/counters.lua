-- counters.lua: add a flush's counts to a queue's counters, in one call.
--
-- Every key is of one queue (one hash tag, so this runs on Redis Cluster too).
-- KEYS[1]  metrics     the queue's counters hash (metrics/counters.py names
--                      its fields)
-- KEYS[2]  throughput  the hash of the current minute's endings in the queue
--                      (keys.throughput); "" fields below are skipped
-- ARGV[1]  ttl         seconds KEYS[2] lives (two hours: the dashboard reads one)
-- ARGV[2]  n           how many field/increment pairs for KEYS[1] follow
-- ARGV[3..]            n pairs for KEYS[1], then pairs for KEYS[2]. An
--                      increment with a "." is added with HINCRBYFLOAT
--                      (histogram sums), any other with HINCRBY.
--
-- One call instead of one command per field keeps the cost of metrics to
-- one EVALSHA per queue per worker flush. Returns the number of fields.

local n = tonumber(ARGV[2])
local last = 2 + 2 * n
for i = 3, last, 2 do
  local by = ARGV[i + 1]
  if string.find(by, '.', 1, true) then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], by)
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], by)
  end
end
if #ARGV > last then
  for i = last + 1, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
end
return (#ARGV - 2) / 2
