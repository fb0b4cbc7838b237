-- withdraw.lua: take back periodic runs sent ahead, before their due time.
--
-- Every key is of one queue (one hash tag): its delayed set and the once
-- keys of the runs, all due at the same millisecond.
-- KEYS[1]      the queue's delayed set (member = priority .. "\n" .. task id ..
--              "\n" .. body, score = due ms; see enqueue.lua)
-- KEYS[2]      the queue's task events stream (events.py)
-- KEYS[2 + i]  once key of run i
-- ARGV[1]      due ms of every run of this call
-- ARGV[2]      about how many entries KEYS[2] keeps; "" writes no event
--              (TASKQ_EVENTS = False)
-- ARGV[3]      now, epoch ms (the events' ts)
-- ARGV[3 + i]  task id of run i
--
-- Returns a list with, for each run, 1 when its message was still waiting
-- and is removed together with its once key, or 0 when it is not in the
-- delayed set (promoted already: its due time has come, so it counts as
-- sent and its once key stays). Removing the message and the once key in
-- one step keeps "at most one message per run" true: the run can then be
-- sent again, once, with the periodic task as it is now (an edit), or not
-- at all (a disable or a delete). The members due at that millisecond are
-- scanned once, however many runs are taken back. The runs taken back get
-- a ``revoked`` event each, in one entry of KEYS[2].

local call = redis.call
local find, sub = string.find, string.sub
local FIRST = 4  -- ARGV index of run 1
local wanted = {}
local result = {}
local gone = {}
for i = FIRST, #ARGV do
  if not wanted[ARGV[i]] then
    wanted[ARGV[i]] = i  -- a run named twice is taken back once (the first)
  end
  result[i - FIRST + 1] = 0
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
      call('DEL', KEYS[i - FIRST + 3])
      result[i - FIRST + 1] = 1
      wanted[id] = nil
      if ARGV[2] ~= '' then
        local ok, body = pcall(cjson.decode, sub(member, nl2 + 1))
        local name = ok and type(body) == 'table' and body.task or nil
        gone[#gone + 1] = {k = 'revoked', id = id, n = type(name) == 'string' and name or nil,
          ts = tonumber(ARGV[3]), msg = 'withdrawn before its due time: its periodic task changed'}
      end
    end
  end
end
if #gone > 0 then
  call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', cjson.encode(gone))
end
return result
