-- enqueue.lua: publish one message into its queue, now or at a due time, once.
--
-- Every key is of the message's queue (one hash tag, so this runs on Redis
-- Cluster too).
-- KEYS[1]  stream      ready stream of the queue at the message's priority
-- KEYS[2]  delayed     the queue's sorted set of messages waiting for their ETA
-- KEYS[3]  once        once key of this publish: set if absent together with the
--                      publish; when it exists already the publish is a duplicate
-- KEYS[4]  events      the queue's task events stream (events.py)
-- KEYS[5]  metrics     the queue's counters hash (metrics/counters.py)
-- KEYS[6]  unique      (unique tasks only) the unique key: holds the id of the
--                      task that owns it (django_taskq/unique.py)
-- KEYS[7]  revoked     (unique tasks only) the queue's revoked set (task id ->
--                      expiry ms): a revoked owner gives its unique key up
-- KEYS[#]  result      (with ARGV[12] only) the last key: the task's result
--                      record, when it lives on this Redis and in no other
--                      Cluster slot (a single Redis or Sentinel)
-- ARGV[1]  body        message body (the JSON envelope)
-- ARGV[2]  task id
-- ARGV[3]  due ms      epoch milliseconds; 0 = ready now
-- ARGV[4]  once ttl    ms to keep KEYS[3]
-- ARGV[5]  priority    0-9 (the delayed member names it, so promote.lua finds
--                      the stream)
-- ARGV[6]  wake        pub/sub channel told (with the queue name in ARGV[7])
--                      when this becomes the queue's earliest ETA
-- ARGV[7]  queue       queue name
-- ARGV[8]  event       the entry's field e (a JSON list: the ``sent`` event);
--                      "" writes no event (TASKQ_EVENTS = False)
-- ARGV[9]  maxlen      about how many entries KEYS[4] keeps (MAXLEN ~)
-- ARGV[10] counter     field of KEYS[5] counting this publish ("" = none)
-- ARGV[11] unique ttl  ms to keep KEYS[6]; "" for a task that is not unique
-- ARGV[12] pending     the PENDING result record to write with SET NX into the
--                      last key; "" or absent: the caller writes it itself
-- ARGV[13] pending ttl ms to keep that record
--
-- Returns 1 when published, 0 when KEYS[3] already existed. The once key
-- and the publish are one step, so a publish retried after its reply was
-- lost, a follow-up sent again by a re-run task, or a periodic run sent by
-- two beats, is queued exactly once; a crash cannot leave one without the
-- other. The PENDING result record is written with SET NX, so a state a
-- worker already stored (an earlier attempt's) is never overwritten: here,
-- in the same step, when the result key may go with the queue's keys
-- (ARGV[12]); else by the caller, after this, in the task's own Cluster
-- slot. The event, the counter and the record are written only for a
-- message that was queued, in the same step: a producer pays no round trip
-- for them, and a one-command publish is one command.
--
-- For a unique task, returns the id held there instead when
-- another task owns the key and was not revoked: nothing is published and
-- no once key is set. The check and the SET of the key are in the same
-- step as the publish, so two concurrent sends never both publish. A key
-- that already holds this task's id is a publish sent again after a lost
-- reply: the once key answers it.

local unique = ARGV[11] and ARGV[11] ~= ''
if unique then
  local holder = redis.call('GET', KEYS[6])
  if holder and holder ~= ARGV[2] then
    local expiry = redis.call('ZSCORE', KEYS[7], holder)
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
    if not (expiry and tonumber(expiry) > now) then
      return holder
    end
  end
end
if not redis.call('SET', KEYS[3], 1, 'NX', 'PX', tonumber(ARGV[4])) then
  return 0
end
if unique then
  redis.call('SET', KEYS[6], ARGV[2], 'PX', tonumber(ARGV[11]))
end
if ARGV[12] and ARGV[12] ~= '' then
  redis.call('SET', KEYS[#KEYS], ARGV[12], 'NX', 'PX', tonumber(ARGV[13]))
end
local due = tonumber(ARGV[3])
if due > 0 then
  local member = ARGV[5] .. '\n' .. ARGV[2] .. '\n' .. ARGV[1]
  redis.call('ZADD', KEYS[2], due, member)
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)
  if first[1] == member then
    redis.call('PUBLISH', ARGV[6], ARGV[7])
  end
else
  redis.call('XADD', KEYS[1], '*', 'i', ARGV[2], 'b', ARGV[1], 'dc', 0)
end
if ARGV[8] and ARGV[8] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[9], '*', 'e', ARGV[8])
end
if ARGV[10] and ARGV[10] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[10], 1)
end
return 1
