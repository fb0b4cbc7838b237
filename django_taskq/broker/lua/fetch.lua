-- fetch.lua: read up to COUNT new messages of one or more queues, in queue
-- order, each queue highest priority first; stop as soon as COUNT are read.
--
-- KEYS, for each queue in turn (its keys share one hash tag):
--   its revoked set (task id -> expiry ms),
--   its streams in order of preference (priority 9..0),
--   its events stream, only when ARGV[5] > 0.
-- ARGV[1]  group      consumer group name
-- ARGV[2]  consumer   this consumer's name
-- ARGV[3]  count      most messages to return
-- ARGV[4]  now ms     epoch milliseconds (a revocation past its expiry is ignored;
--                     the time of the received entries)
-- ARGV[5]  maxlen     approximate cap of the events streams; 0 writes no
--                     received entry (task events off)
-- ARGV[6]  worker     the worker named in the received entries
-- ARGV[7..]           for each queue, how many streams it has among KEYS
--
-- On Redis Cluster a call holds one queue (one slot). On one Redis it holds
-- several (worker/streams.py), so that a worker on many queues, most of
-- them empty, does not pay a round trip for each empty one.
--
-- Returns a flat list, per message:
--   key index (into KEYS: one of the streams), entry id, revoked (0/1), then
--   either
--   i, b, dc  (an entry of exactly those fields, in that order: every entry
--             django_taskq writes, so the common reply is short), or
--   {field, value, ...}  (any other entry, as it is)
-- The worker checks the fields either way (a malformed entry is
-- dead-lettered there, with its reason).
-- Entries join the group's pending list of ARGV[2] as they are read, so a
-- crash after this call loses nothing. A missing group raises NOGROUP; the
-- caller creates the groups and retries.
--
-- With events on, the call appends ONE entry to each queue's events stream
-- for the messages it hands out of that queue: r (JSON list of their task
-- ids), ts (ARGV[4]) and w (ARGV[6]); the history recorder reads it as one
-- ``received`` event per task (events.py). It costs one XADD per queue
-- and fetch, not per task, and no Python on the worker. redis.pcall: an
-- events key of the wrong type must not lose a fetch whose entries are
-- already pending.

local want = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local maxlen = tonumber(ARGV[5]) or 0
local out = {}
local k = 1 -- the first key of the current queue
for q = 7, #ARGV do
  if want <= 0 then break end
  local revoked_key = KEYS[k]
  local first = k + 1
  local last = k + tonumber(ARGV[q])
  local received = nil
  if maxlen > 0 then received = {} end
  for s = first, last do
    if want <= 0 then break end
    local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want,
      'STREAMS', KEYS[s], '>')
    if reply then
      for _, entry in ipairs(reply[1][2]) do
        local fields = entry[2]
        local revoked = 0
        for i = 1, #fields, 2 do
          if fields[i] == 'i' then
            local expiry = redis.call('ZSCORE', revoked_key, fields[i + 1])
            if expiry and tonumber(expiry) > now then revoked = 1 end
            if received then received[#received + 1] = fields[i + 1] end
            break
          end
        end
        table.insert(out, s)
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
  k = last + 1
  if received then
    if #received > 0 then
      redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*',
        'r', cjson.encode(received), 'ts', ARGV[4], 'w', ARGV[6])
    end
    k = k + 1
  end
end
return out
