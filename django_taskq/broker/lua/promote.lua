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
-- Any number of workers (and the beat leader, for the runs it sent ahead)
-- may run this at once: each member is removed and added to its stream in
-- the same atomic step, so it is moved exactly once. A member that is not in
-- the expected form is moved to priority 0 whole, as its own body (the worker
-- dead-letters it with its reason), never dropped.
--
-- This is the step that makes a burst of periodic runs fetchable at their
-- due time, so it is kept lean: the due members are the lowest ranks of the
-- set, so they are removed with one ZREMRANGEBYRANK (not a ZREM per member,
-- which would hash and look up every body again), and the loop uses locals.

local call = redis.call
local find, sub = string.find, string.sub
local due = call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local count = #due
for i = 1, count do
  local member = due[i]
  local nl1 = find(member, '\n', 1, true)
  local nl2 = nl1 and find(member, '\n', nl1 + 1, true)
  local priority = nl1 and tonumber(sub(member, 1, nl1 - 1))
  if nl2 and priority and priority >= 0 and priority <= 9 and priority % 1 == 0 then
    call('XADD', KEYS[2 + priority], '*', 'i', sub(member, nl1 + 1, nl2 - 1),
      'b', sub(member, nl2 + 1), 'dc', '0')
  else
    call('XADD', KEYS[2], '*', 'i', '', 'b', member, 'dc', '0')
  end
end
if count > 0 then
  -- ZRANGEBYSCORE from -inf returned ranks 0 .. count-1, in rank order.
  call('ZREMRANGEBYRANK', KEYS[1], 0, count - 1)
end
local first = call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if first[2] then
  next_due = first[2]
end
return {count, next_due}
