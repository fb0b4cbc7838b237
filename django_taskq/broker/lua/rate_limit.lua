-- rate_limit.lua: take one token from a task's bucket.
--
-- KEYS[1]  bucket    hash {tokens, ts} of one task name
-- ARGV[1]  now ms    epoch milliseconds
-- ARGV[2]  rate      tokens added per second
-- ARGV[3]  burst     bucket capacity
--
-- Always takes a token, letting the bucket go negative: the returned wait
-- (0, or the milliseconds until this caller's token is due) reserves a
-- distinct slot for each caller, so delayed callers do not all retry at once.

local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - ts) / 1000 * rate)
tokens = tokens - 1
local wait = 0
if tokens < 0 then
  wait = math.ceil(-tokens / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
