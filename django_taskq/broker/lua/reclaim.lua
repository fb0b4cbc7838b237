-- reclaim.lua: give back messages held by consumers that are gone, or hand
-- back messages a live consumer will not start.
--
-- KEYS[1]  stream
-- KEYS[2]  dead           dead-letter stream
-- ARGV[1]  group
-- ARGV[2]  mode           "dead":     every consumer of KEYS[1] with no heartbeat key
--                         "consumer": the consumer named in ARGV[9]
--                         "ids":      the entry ids in ARGV[10..]
-- ARGV[3]  heartbeat prefix  "<prefix>:hb:"
-- ARGV[4]  max deliveries    a message delivered this often is dead-lettered
-- ARGV[5]  dead maxlen       approximate cap of the dead-letter stream
-- ARGV[6]  result prefix     "<prefix>:r:" (a dead letter records FAILURE there)
-- ARGV[7]  result ttl ms
-- ARGV[8]  count delivery    1: this was a delivery that did not finish (crash);
--                            0: the message was never started (hand-back)
-- ARGV[9]  consumer          for mode "consumer"
-- ARGV[10..] entry ids       for mode "ids"
--
-- A given-back message is re-added at the end of its stream with its delivery
-- count raised, then acked and deleted, in one atomic step: it is never lost
-- and never held twice. Returns {requeued, dead_lettered, {bodies...}}: the
-- bodies of the dead-lettered messages, so the caller can settle workflows
-- (chords, errbacks) that wait on them.

local stream, dead, group = KEYS[1], KEYS[2], ARGV[1]
local mode = ARGV[2]
local max_deliveries = tonumber(ARGV[4])
local bump = tonumber(ARGV[8])
local requeued, dead_lettered = 0, 0
local dead_bodies = {}

local function give_back(id, reason_prefix)
  local entries = redis.call('XRANGE', stream, id, id)
  if #entries == 0 then
    redis.call('XACK', stream, group, id)
    return
  end
  local fields = entries[1][2]
  local task_id, body, dc = '', '', 0
  for i = 1, #fields, 2 do
    if fields[i] == 'i' then task_id = fields[i + 1]
    elseif fields[i] == 'b' then body = fields[i + 1]
    elseif fields[i] == 'dc' then dc = tonumber(fields[i + 1]) end
  end
  dc = dc + bump
  if bump > 0 and dc >= max_deliveries then
    local reason = reason_prefix .. ': delivered ' .. dc .. ' times without finishing ' ..
      '(TASKQ_MAX_DELIVERIES=' .. max_deliveries .. ')'
    redis.call('XADD', dead, 'MAXLEN', '~', tonumber(ARGV[5]), '*',
      'i', task_id, 'b', body, 'reason', reason, 'stream', stream)
    if task_id ~= '' then
      local record = cjson.encode({
        status = 'FAILURE',
        result = {exc_type = 'django_taskq.exceptions.WorkerLostError',
                  exc_message = reason, exc_args = {reason}},
        traceback = cjson.null,
        date_done = tonumber(redis.call('TIME')[1]),
        dead_lettered = true,
      })
      local prefix = string.sub(ARGV[6], 1, #ARGV[6] - 2)
      redis.call('SET', ARGV[6] .. task_id, record, 'PX', tonumber(ARGV[7]))
      for _, list in ipairs(redis.call('SMEMBERS', prefix .. 'w:' .. task_id)) do
        redis.call('RPUSH', list, 1)
        redis.call('PEXPIRE', list, 60000)
      end
    end
    dead_lettered = dead_lettered + 1
    table.insert(dead_bodies, body)
  else
    redis.call('XADD', stream, '*', 'i', task_id, 'b', body, 'dc', dc)
    requeued = requeued + 1
  end
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end

local function give_back_consumer(consumer, reason_prefix)
  while true do
    local pending = redis.call('XPENDING', stream, group, '-', '+', 100, consumer)
    if #pending == 0 then break end
    for _, p in ipairs(pending) do
      give_back(p[1], reason_prefix)
    end
  end
end

if mode == 'ids' then
  for i = 10, #ARGV do
    give_back(ARGV[i], bump > 0 and 'worker lost while running it' or 'handed back')
  end
elseif mode == 'consumer' then
  give_back_consumer(ARGV[9], 'worker ' .. ARGV[9] .. ' lost')
  redis.call('XGROUP', 'DELCONSUMER', stream, group, ARGV[9])
else
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, group)
  if not ok then return {0, 0, {}} end
  for _, c in ipairs(consumers) do
    local name, pending = nil, 0
    for i = 1, #c, 2 do
      if c[i] == 'name' then name = c[i + 1]
      elseif c[i] == 'pending' then pending = c[i + 1] end
    end
    if name and redis.call('EXISTS', ARGV[3] .. name) == 0 then
      if pending > 0 then
        give_back_consumer(name, 'worker ' .. name .. ' lost')
      end
      redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
    end
  end
end
return {requeued, dead_lettered, dead_bodies}
