-- reclaim.lua: put messages held in a stream's pending list back at the end of the stream.
--
-- For messages whose consumer is gone (its heartbeat expired, or its process
-- died), and for messages a live consumer hands back unstarted.
-- Every key is of one queue (one hash tag).
-- KEYS[1]  stream
-- ARGV[1]  group
-- ARGV[2]  mode       "consumer": every entry pending for the consumer in ARGV[5],
--                     which is then deleted from the group;
--                     "ids": the entry ids in ARGV[6..]
-- ARGV[3]  bump       1: the delivery did not finish (a crash): its count `dc`
--                     goes up by one; 0: never started (a hand-back)
-- ARGV[4]  verdict    "" or what the worker that ran it decided (for example
--                     "time_limit:30"): stored as the field `v`, so the next
--                     consumer settles the message that way instead of running it
-- ARGV[5]  consumer   for mode "consumer"
-- ARGV[6..] entry ids for mode "ids"
--
-- A message is re-added with every field it had (dc raised when ARGV[3] is
-- 1; a `dc` that is not a number is left as it is, for the worker to
-- dead-letter), then acked and deleted, in one atomic step: it is never lost
-- and never held twice. Nothing is dead-lettered here: a consumer that
-- fetches a message delivered TASKQ_MAX_DELIVERIES times settles it as dead
-- (result, follow-ups, dead letter, ack), the one way every task ends.
-- Returns the number of messages re-added.

local stream, group = KEYS[1], ARGV[1]
local bump = tonumber(ARGV[3])
local verdict = ARGV[4]
local moved = 0

local function give_back(id)
  local entries = redis.call('XRANGE', stream, id, id)
  if #entries == 0 then
    redis.call('XACK', stream, group, id)  -- acked and deleted elsewhere already
    return
  end
  local fields = entries[1][2]
  local out = {}
  local has_dc = false
  -- At most 500 fields are kept (unpack has a limit; a real entry has three).
  for i = 1, math.min(#fields, 1000), 2 do
    local name, value = fields[i], fields[i + 1]
    if name == 'dc' then
      has_dc = true
      local n = tonumber(value)
      if n and bump > 0 then value = tostring(math.floor(n) + bump) end
    end
    if not (name == 'v' and verdict ~= '') then
      table.insert(out, name)
      table.insert(out, value)
    end
  end
  if not has_dc then
    table.insert(out, 'dc')
    table.insert(out, tostring(bump))
  end
  if verdict ~= '' then
    table.insert(out, 'v')
    table.insert(out, verdict)
  end
  redis.call('XADD', stream, '*', unpack(out))
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  moved = moved + 1
end

if ARGV[2] == 'ids' then
  for i = 6, #ARGV do
    give_back(ARGV[i])
  end
else
  local consumer = ARGV[5]
  while true do
    local pending = redis.call('XPENDING', stream, group, '-', '+', 100, consumer)
    if #pending == 0 then break end
    for _, p in ipairs(pending) do
      give_back(p[1])
    end
  end
  redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer)
end
return moved
