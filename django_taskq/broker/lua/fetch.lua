-- fetch.lua: read up to COUNT new messages of one queue, highest priority first.
--
-- Every key is of one queue (one hash tag).
-- KEYS[1]      the queue's revoked set (task id -> expiry ms)
-- KEYS[2..]    the queue's streams in order of preference (priority 9..0)
-- KEYS[last]   the queue's events stream, only when ARGV[5] > 0 (then the
--              streams are KEYS[2..#KEYS - 1])
-- ARGV[1]  group      consumer group name
-- ARGV[2]  consumer   this consumer's name
-- ARGV[3]  count      most messages to return
-- ARGV[4]  now ms     epoch milliseconds (a revocation past its expiry is ignored;
--                     the time of the received entry)
-- ARGV[5]  maxlen     optional: approximate cap of the events stream; absent or 0
--                     writes no received entry (task events off)
-- ARGV[6]  worker     optional: the worker named in the received entry
--
-- Returns a flat list, per message:
--   stream index (into KEYS, 2..), entry id, revoked (0/1), then either
--   i, b, dc  (an entry of exactly those fields, in that order: every entry
--             django_taskq writes, so the common reply is short), or
--   {field, value, ...}  (any other entry, as it is)
-- The worker checks the fields either way (a malformed entry is
-- dead-lettered there, with its reason).
-- Entries join the group's pending list of ARGV[2] as they are read, so a
-- crash after this call loses nothing. A missing group raises NOGROUP; the
-- caller creates the groups and retries.
--
-- With events on, the call appends ONE entry to the events stream for all
-- the messages it hands out: r (JSON list of their task ids), ts (ARGV[4])
-- and w (ARGV[6]); the history recorder reads it as one ``received`` event
-- per task (events.py). It costs one XADD per fetch, not per task, and no
-- Python on the worker. redis.pcall: an events key of the wrong type must
-- not lose a fetch whose entries are already pending.

local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local maxlen = tonumber(ARGV[5] or '0') or 0
local last = #KEYS
local received = nil
if maxlen > 0 then
  last = #KEYS - 1
  received = {}
end
local out = {}
for k = 2, last do
  if want <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want,
    'STREAMS', KEYS[k], '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      local fields = entry[2]
      local revoked = 0
      for i = 1, #fields, 2 do
        if fields[i] == 'i' then
          local expiry = redis.call('ZSCORE', KEYS[1], fields[i + 1])
          if expiry and tonumber(expiry) > now then revoked = 1 end
          if received then received[#received + 1] = fields[i + 1] end
          break
        end
      end
      table.insert(out, k)
      table.insert(out, entry[1])
      table.insert(out, revoked)
      if #fields == 6 and fields[1] == 'i' and fields[3] == 'b' and fields[5] == 'dc' then
        table.insert(out, fields[2])
        table.insert(out, fields[4])
        table.insert(out, fields[6])
      else
        table.insert(out, fields)
      end
      want = want - 1
    end
  end
end
if received and #received > 0 then
  redis.pcall('XADD', KEYS[#KEYS], 'MAXLEN', '~', maxlen, '*',
    'r', cjson.encode(received), 'ts', ARGV[4], 'w', ARGV[6] or '')
end
return out
