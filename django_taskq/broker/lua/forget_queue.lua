-- forget_queue.lua: delete a queue's keys if it has been empty and unused for long.
--
-- Every key is of one queue (one hash tag).
-- KEYS[1]      the queue's delayed set
-- KEYS[2]      the queue's dead-letter stream
-- KEYS[3]      the queue's revoked set
-- KEYS[4..13]  the queue's ten streams
-- ARGV[1]  cutoff ms   a stream written to after this (epoch ms) is in use
--
-- Deletes the streams (and their consumer group) and the revoked set when
-- no stream holds an entry, none was written to since the cutoff, nothing
-- waits in the delayed set and nothing is in the dead letters. Returns 1
-- when the queue was forgotten, 0 when it is in use. A producer publishing
-- at the same moment either comes before (the queue is kept) or after (its
-- XADD makes the stream anew and its registration adds the queue back).

if redis.call('ZCARD', KEYS[1]) > 0 or redis.call('XLEN', KEYS[2]) > 0 then
  return 0
end
local cutoff = tonumber(ARGV[1])
for k = 4, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    if redis.call('XLEN', KEYS[k]) > 0 then return 0 end
    local info = redis.call('XINFO', 'STREAM', KEYS[k])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local ms = tonumber(string.match(info[i + 1], '^(%d+)'))
        if ms and ms > cutoff then return 0 end
      end
    end
  end
end
for k = 3, #KEYS do
  redis.call('DEL', KEYS[k])
end
return 1
