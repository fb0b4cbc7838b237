-- store_result.lua: write tasks' states, forward only, and wake whoever waits for them.
--
-- KEYS     two or three a record, of the same task:
--          result    the task's result record (JSON, "status" first)
--          waiters   set of wake-up list names, one per AsyncResult.get() waiting
--          attempts  (a Django task's record only) list of its attempts (attempts.py)
-- ARGV[1]  ttl ms     how long to keep the records
-- ARGV     then two or four a record:
--          the record (JSON, starting {"status":"<STATE>")
--          flag       bit 1: its state is final (SUCCESS, FAILURE, REVOKED);
--                     bit 2: the record has an attempts list (0 or 1: two keys
--                     and two arguments; 2 or 3: three keys and four)
--          entry      (bit 2) an entry to append to the attempts list, or ""
--          cap        (bit 2) how many entries the list keeps at most (the newest)
--
-- The keys of one record share its task's hash tag. On Redis Cluster each
-- call carries the records of one slot (broker/topology.py groups them);
-- on one Redis or Sentinel a worker's flush stores a whole batch in one call.
--
-- States only move forward: a record whose state is final is kept and the
-- write refused, except that a record marked "provisional" (written by
-- revoke() for a task not known to have finished) gives way to a final
-- state. So the first final state stays, and a task run again after a
-- crash converges on the outcome already stored. A non-final state
-- (PENDING, RECEIVED, STARTED, RETRY, a custom progress state) never
-- replaces a final one. A refused write appends no attempt entry.
-- A stored record's attempts list is given the record's expiry, so the two
-- go together.
-- A waiter adds its list to the set before it reads the result; this writes
-- the result (and the attempt) before it reads the set, in one atomic step,
-- so no wake-up is missed and a woken reader finds both. The wake-up is the
-- record itself, so a waiter woken by a final state needs no second read.
-- The wake-up lists share the task's tag (keys.wakeup).
--
-- Returns one item a record: 1 when stored, else the record that was kept.

local ttl = tonumber(ARGV[1])
local out = {}
local k, a = 1, 2
while a <= #ARGV do
  local result, waiters = KEYS[k], KEYS[k + 1]
  local record, flag = ARGV[a], tonumber(ARGV[a + 1])
  local final = flag % 2 == 1
  local attempts, entry, cap = nil, nil, nil
  if flag >= 2 then
    attempts, entry, cap = KEYS[k + 2], ARGV[a + 2], tonumber(ARGV[a + 3])
    k, a = k + 3, a + 4
  else
    k, a = k + 2, a + 2
  end
  local current = redis.call('GET', result)
  local keep = false
  if current then
    local state = string.match(current, '^{"status":"([^"]*)"')
    if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' then
      keep = not (final and string.find(current, '"provisional":true', 1, true))
    end
  end
  if keep then
    out[#out + 1] = current
  else
    redis.call('SET', result, record, 'PX', ttl)
    if attempts then
      if entry ~= '' then
        redis.call('RPUSH', attempts, entry)
        redis.call('LTRIM', attempts, -cap, -1)
      end
      redis.call('PEXPIRE', attempts, ttl)
    end
    for _, list in ipairs(redis.call('SMEMBERS', waiters)) do
      redis.call('RPUSH', list, record)
      redis.call('PEXPIRE', list, 60000)
    end
    out[#out + 1] = 1
  end
end
return out
