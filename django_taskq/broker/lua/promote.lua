-- promote.lua: move delayed messages whose due time has come into their streams.
--
-- KEYS[1]  delayed   sorted set; member = stream .. "\n" .. task id .. "\n" .. body,
--                    score = due time in epoch milliseconds
-- ARGV[1]  now ms    epoch milliseconds
-- ARGV[2]  limit     most messages to move in one call
--
-- Returns {moved, next_due_ms}; next_due_ms is -1 when the set is empty.
-- Any number of workers may run this at once: each member is removed and
-- added to its stream in the same atomic step, so it is moved exactly once.

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local nl1 = string.find(member, '\n', 1, true)
  local nl2 = string.find(member, '\n', nl1 + 1, true)
  local stream = string.sub(member, 1, nl1 - 1)
  local task_id = string.sub(member, nl1 + 1, nl2 - 1)
  local body = string.sub(member, nl2 + 1)
  redis.call('XADD', stream, '*', 'i', task_id, 'b', body, 'dc', 0)
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then
  next_due = first[2]
end
return {#due, next_due}
