-- settle.lua: one queue's share of a worker flush, in one call: the acks,
-- then the counters, then the events.
--
-- Every key is of one queue (one hash tag, so this runs on Redis Cluster too).
-- KEYS[1]  events      the queue's events stream (events.py)
-- KEYS[2]  metrics     the queue's counters hash (metrics/counters.py names
--                      its fields)
-- KEYS[3]  throughput  the hash of the current minute's endings in the queue
-- KEYS[4..]            the queue's streams whose entries are acked here
-- ARGV[1]  group       the consumer group
-- ARGV[2]  maxlen      approximate cap of KEYS[1]
-- ARGV[3]  worker      the worker that wrote the events ("" for none)
-- ARGV[4]  ttl         seconds KEYS[3] lives (two hours: the dashboard reads one)
-- then, each section a count followed by that many items:
--   for each stream of KEYS[4..], its entry ids (XACK + XDEL);
--   counter pairs for KEYS[2] (field, increment: one with a "." is added
--   with HINCRBYFLOAT, any other with HINCRBY);
--   ending pairs for KEYS[3];
--   event entries for KEYS[1] (each the JSON list of its field e).
--
-- Why one script: the acks, the counters and the events of a flush were four
-- commands per queue (XACK, XDEL, a counters call, XADD); each costs the
-- worker more client CPU than the data it carries (docs/benchmarks.md).
-- The acks come first and use redis.call: if they fail, nothing else is
-- written. The counters and events use redis.pcall: a key of the wrong
-- type there (whatever bytes are in Redis) must not stop the acks of a
-- flush, and its error is returned for the worker to log. Counters before
-- events: a reader that sees an event sees its counts (a script is atomic
-- anyway). Returns {entries acked, errors of the counters and events}.

local group = ARGV[1]
local i = 5

-- The acks: XACK + XDEL of each stream's ids, at most 1000 ids a command
-- (unpack() has a limit).
local acked = 0
for s = 4, #KEYS do
  local n = tonumber(ARGV[i])
  local first, last = i + 1, i + n
  for from = first, last, 1000 do
    local to = math.min(from + 999, last)
    acked = acked + redis.call('XACK', KEYS[s], group, unpack(ARGV, from, to))
    redis.call('XDEL', KEYS[s], unpack(ARGV, from, to))
  end
  i = last + 1
end

local errors = {}
local function try(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then
    table.insert(errors, reply.err)
  end
end

-- The counters.
local n = tonumber(ARGV[i])
local last = i + 2 * n
for j = i + 1, last, 2 do
  local by = ARGV[j + 1]
  if string.find(by, '.', 1, true) then
    try('HINCRBYFLOAT', KEYS[2], ARGV[j], by)
  else
    try('HINCRBY', KEYS[2], ARGV[j], by)
  end
end
i = last + 1

-- The endings of the current minute.
n = tonumber(ARGV[i])
last = i + 2 * n
for j = i + 1, last, 2 do
  try('HINCRBY', KEYS[3], ARGV[j], ARGV[j + 1])
end
if n > 0 then
  try('EXPIRE', KEYS[3], tonumber(ARGV[4]))
end
i = last + 1

-- The events.
n = tonumber(ARGV[i])
for j = i + 1, i + n do
  if ARGV[3] ~= '' then
    try('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[j], 'w', ARGV[3])
  else
    try('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[j])
  end
end

return {acked, errors}
