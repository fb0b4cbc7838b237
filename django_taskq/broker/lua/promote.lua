-- promote.lua: move a queue's delayed messages whose due time has come into its streams.
--
-- Every key is of one queue (one hash tag).
-- KEYS[1]      the queue's delayed set; member = priority .. "\n" .. task id ..
--              "\n" .. body, score = due time in epoch milliseconds
-- KEYS[2..11]  the queue's streams at priority 0..9 (KEYS[2 + priority])
-- ARGV[1]  now ms    epoch milliseconds
-- ARGV[2]  limit     most messages to move in one call
--
-- Returns {moved, next_due_ms}; next_due_ms is -1 when the set is empty.
-- Any number of workers may run this at once: each member is removed and
-- added to its stream in the same atomic step, so it is moved exactly once.
-- A member that is not in the expected form is moved to priority 0 whole, as
-- its own body (the worker dead-letters it with its reason), never dropped.

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local nl1 = string.find(member, '\n', 1, true)
  local nl2 = nl1 and string.find(member, '\n', nl1 + 1, true)
  local priority = nl1 and tonumber(string.sub(member, 1, nl1 - 1))
  if nl2 and priority and priority >= 0 and priority <= 9 and priority == math.floor(priority) then
    local task_id = string.sub(member, nl1 + 1, nl2 - 1)
    local body = string.sub(member, nl2 + 1)
    redis.call('XADD', KEYS[2 + priority], '*', 'i', task_id, 'b', body, 'dc', 0)
  else
    redis.call('XADD', KEYS[2], '*', 'i', '', 'b', member, 'dc', 0)
  end
  redis.call('ZREM', KEYS[1], member)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then
  next_due = first[2]
end
return {#due, next_due}
