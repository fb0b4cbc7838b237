-- unique_release.lua: give up, or keep longer, the unique key of a task that ended.
--
-- KEYS[1]  unique      the unique key (keys.unique: in the slot of the queue the
--                      task was sent to)
-- ARGV[1]  task id     the task that ended (or is retried)
-- ARGV[2]  keep ms     0: the task ended for good, delete the key; > 0: the task
--                      is retried later, keep the key at least this long
--
-- Compare and delete: the key is touched only while it still holds ARGV[1].
-- Once it lapsed (its TTL ran out while the task waited or ran) and another
-- task took it, that task's key is left alone. Returns 1 when the key was
-- deleted or kept, 0 when it held another id or nothing.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local keep = tonumber(ARGV[2])
if keep <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
if redis.call('PTTL', KEYS[1]) < keep then
  redis.call('PEXPIRE', KEYS[1], keep)
end
return 1
