-- enqueue_many.lua: publish many messages of one queue in one step, each once.
--
-- What enqueue.lua does for one message, for a batch (``publish_many()``:
-- ``delay_many``, ``apply_many``, groups): one call instead of one per
-- message, so a bulk send packs and runs one command per batch. Unique
-- tasks never come here. Every key is of the queue (one hash tag), except
-- the result keys, which are passed only where they may go with the
-- queue's keys (a single Redis or Sentinel, ARGV[6] = 1).
--
-- KEYS[1]  delayed     the queue's sorted set of messages waiting for their ETA
-- KEYS[2]  events      the queue's task events stream (events.py)
-- KEYS[3]  metrics     the queue's counters hash (metrics/counters.py)
-- then per message, ARGV[6] + 2 keys:
--          stream      ready stream of the queue at the message's priority
--          once        the publish's once key
--          result      (ARGV[6] = 1 only) the task's result record
-- ARGV[1]  count       how many messages
-- ARGV[2]  once ttl    ms to keep each once key
-- ARGV[3]  wake        pub/sub channel told (with the queue name in ARGV[4])
--                      when the batch brings the queue's earliest ETA
-- ARGV[4]  queue       queue name
-- ARGV[5]  maxlen      about how many entries KEYS[2] keeps (MAXLEN ~)
-- ARGV[6]  results     1: the PENDING records are written here (SET NX)
-- then per message, 7 arguments:
--          body, task id, due ms (0 = ready now), priority,
--          event (the ``sent`` event's JSON; "" = none),
--          counter (field of KEYS[3] counting the publish; "" = none),
--          pending (the PENDING record; "" = none; with ARGV[6] = 1 only),
-- and, after them all, the PENDING records' ttl in ms, one per message.
--
-- Returns a list: 1 for each message queued, 0 for one whose once key
-- existed already (a batch sent again after a lost reply). Events and
-- counters are written for queued messages only, the events joined into
-- entries of up to 128.

local count = tonumber(ARGV[1])
local once_ttl = tonumber(ARGV[2])
local results = ARGV[6] == '1'
local stride_keys = results and 3 or 2
local replies = {}
local events = {}
local counted = {}
local earliest = nil
local first_before = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local ttl_base = 6 + count * 7

for i = 1, count do
  local k = 3 + (i - 1) * stride_keys
  local a = 6 + (i - 1) * 7
  if redis.call('SET', KEYS[k + 2], 1, 'NX', 'PX', once_ttl) then
    local body, id, due = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    if results and ARGV[a + 7] ~= '' then
      redis.call('SET', KEYS[k + 3], ARGV[a + 7], 'NX', 'PX', tonumber(ARGV[ttl_base + i]))
    end
    if due > 0 then
      redis.call('ZADD', KEYS[1], due, ARGV[a + 4] .. '\n' .. id .. '\n' .. body)
      if earliest == nil or due < earliest then
        earliest = due
      end
    else
      redis.call('XADD', KEYS[k + 1], '*', 'i', id, 'b', body, 'dc', 0)
    end
    if ARGV[a + 5] ~= '' then
      events[#events + 1] = ARGV[a + 5]
    end
    local field = ARGV[a + 6]
    if field ~= '' then
      counted[field] = (counted[field] or 0) + 1
    end
    replies[i] = 1
  else
    replies[i] = 0
  end
end

if earliest ~= nil and (first_before[2] == nil or earliest < tonumber(first_before[2])) then
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
for start = 1, #events, 128 do
  local last = math.min(start + 127, #events)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'e',
    '[' .. table.concat(events, ',', start, last) .. ']')
end
for field, n in pairs(counted) do
  redis.call('HINCRBY', KEYS[3], field, n)
end
return replies
