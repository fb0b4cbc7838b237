-- chord_part.lua: record one finished chord header task; say when all have finished.
--
-- KEYS[1]  parts    hash: header index -> that task's final outcome (JSON)
-- ARGV[1]  index    the header task's position in the header (0-based)
-- ARGV[2]  part     its outcome: {"ok": true, "id": ..., "v": value} or
--                   {"ok": false, "id": ..., "exc": {...}} (JSON)
-- ARGV[3]  size     number of header tasks
-- ARGV[4]  ttl ms   how long to keep KEYS[1] (TASKQ_RESULT_EXPIRES)
--
-- Returns the number of distinct finished indexes while the chord is not
-- complete, and the whole hash (HGETALL, flat) once it is.
--
-- Idempotent: HSETNX keeps the first outcome of an index, so a header task
-- that is redelivered after a crash, or run again, is counted once, and
-- only final outcomes are ever recorded (a retry is not final). Counting is
-- by distinct index, so two workers finishing the last two tasks at once
-- cannot both see the chord complete on their own first count. The hash is
-- returned every time the chord is complete, not only the first: a worker
-- that counted the last task and then crashed before it published the body
-- has its message redelivered, counts again (a no-op), and publishes the
-- body again; that publish carries a once key (enqueue.lua), so the body
-- starts exactly once.

local size = tonumber(ARGV[3])
local index = tonumber(ARGV[1])
if index == nil or index < 0 or index >= size then
  return redis.error_reply('chord part index ' .. ARGV[1] .. ' is outside 0..' .. (size - 1))
end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
local done = redis.call('HLEN', KEYS[1])
if done >= size then
  return redis.call('HGETALL', KEYS[1])
end
return done
