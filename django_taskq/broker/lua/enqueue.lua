-- enqueue.lua: publish one message, now or at a due time, atomically.
--
-- KEYS[1]  stream      ready stream of the message's queue and priority
-- KEYS[2]  delayed     sorted set of messages waiting for their ETA
-- KEYS[3]  result      result key of the task id (written PENDING when ARGV[4] > 0)
-- KEYS[4]  queues      set of known queue names
-- KEYS[5]  once        set-if-absent key that makes the publish happen at most
--                      once (beat's "periodic task + due time"); ignored when
--                      ARGV[6] is 0
-- ARGV[1]  body        message body (JSON envelope)
-- ARGV[2]  task id
-- ARGV[3]  due ms      epoch milliseconds; 0 = ready now
-- ARGV[4]  result ttl  ms to keep the PENDING record; 0 = write none
-- ARGV[5]  pending     the PENDING record (JSON)
-- ARGV[6]  once ttl    ms to keep KEYS[5]; 0 = no at-most-once check
-- ARGV[7]  queue       queue name (added to KEYS[4])
-- ARGV[8]  wake        pub/sub channel told when this becomes the earliest ETA
--
-- Returns 1 when published, 0 when KEYS[5] already existed (a duplicate).
-- The once key and the publish happen in one step, so a crash cannot leave
-- one without the other.

local once_ttl = tonumber(ARGV[6])
if once_ttl > 0 then
  if not redis.call('SET', KEYS[5], ARGV[2], 'NX', 'PX', once_ttl) then
    return 0
  end
end

local due = tonumber(ARGV[3])
if due > 0 then
  local member = KEYS[1] .. '\n' .. ARGV[2] .. '\n' .. ARGV[1]
  redis.call('ZADD', KEYS[2], due, member)
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)
  if first[1] == member then
    redis.call('PUBLISH', ARGV[8], due)
  end
else
  redis.call('XADD', KEYS[1], '*', 'i', ARGV[2], 'b', ARGV[1], 'dc', 0)
end

local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ttl)
end
redis.call('SADD', KEYS[4], ARGV[7])
return 1
