-- withdraw.lua: take back periodic runs sent ahead, before their due time.
--
-- Every key is of one queue (one hash tag): its delayed set and the once
-- keys of the runs, all due at the same millisecond.
-- KEYS[1]      the queue's delayed set (member = priority .. "\n" .. task id ..
--              "\n" .. body, score = due ms; see enqueue.lua)
-- KEYS[1 + i]  once key of run i
-- ARGV[1]      due ms of every run of this call
-- ARGV[1 + i]  task id of run i
--
-- Returns a list with, for each run, 1 when its message was still waiting
-- and is removed together with its once key, or 0 when it is not in the
-- delayed set (promoted already: its due time has come, so it counts as
-- sent and its once key stays). Removing the message and the once key in
-- one step keeps "at most one message per run" true: the run can then be
-- sent again, once, with the periodic task as it is now (an edit), or not
-- at all (a disable or a delete). The members due at that millisecond are
-- scanned once, however many runs are taken back.

local call = redis.call
local find, sub = string.find, string.sub
local wanted = {}
local result = {}
for i = 2, #ARGV do
  if not wanted[ARGV[i]] then
    wanted[ARGV[i]] = i  -- a run named twice is taken back once (the first)
  end
  result[i - 1] = 0
end
local members = call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
for _, member in ipairs(members) do
  local nl1 = find(member, '\n', 1, true)
  local nl2 = nl1 and find(member, '\n', nl1 + 1, true)
  if nl2 then
    local id = sub(member, nl1 + 1, nl2 - 1)
    local i = wanted[id]
    if i then
      call('ZREM', KEYS[1], member)
      call('DEL', KEYS[i])
      result[i - 1] = 1
      wanted[id] = nil
    end
  end
end
return result
