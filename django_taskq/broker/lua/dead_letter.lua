-- dead_letter.lua: move one message to its queue's dead letters, with the reason.
--
-- Every key is of one queue (one hash tag).
-- KEYS[1]  stream       where the message is pending
-- KEYS[2]  dead         the queue's dead-letter stream
-- ARGV[1]  group
-- ARGV[2]  entry id
-- ARGV[3]  reason       why (names the field or the cause)
-- ARGV[4]  at           epoch seconds, for humans
-- ARGV[5]  maxlen       approximate cap of the dead-letter stream
--
-- The dead letter keeps every field of the entry (so `taskq_dead --requeue`
-- can put it back as it was) plus reason, stream and at. Adding it and
-- acking the original are one step: a crash cannot dead-letter it twice or
-- lose it. An entry that is gone already (settled before a crash) is only
-- acked. Returns 1 when dead-lettered, 0 when the entry was gone.

local entries = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entries == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
local out = {}
local fields = entries[1][2]
-- At most 500 fields are kept (unpack has a limit; a real entry has three).
for i = 1, math.min(#fields, 1000) do
  table.insert(out, fields[i])
end
table.insert(out, 'reason'); table.insert(out, ARGV[3])
table.insert(out, 'stream'); table.insert(out, KEYS[1])
table.insert(out, 'at'); table.insert(out, ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[5]), '*', unpack(out))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
