-- queue_stats.lua: read one queue's live counts, changing nothing.
--
-- Every key is of one queue (one hash tag, so this runs on Redis Cluster too).
-- KEYS[1]      the queue's delayed set (score = due time in epoch ms)
-- KEYS[2]      the queue's dead-letter stream
-- KEYS[3..]    the queue's streams, in the order the caller wants them back
-- ARGV[1]  group      consumer group name
--
-- Returns a flat list:
--   server time ms, delayed count, earliest due ms (-1: none), dead count,
--   then per stream of KEYS[3..]:
--     length, pending, id of the first undelivered entry ("" if none),
--     n consumers, then n pairs of consumer name, messages it holds
-- "Undelivered" is after the group's last-delivered id (every entry when
-- the stream has no group yet). The caller counts ready = length - pending:
-- delivered entries leave the stream when they are acked. A key of the wrong
-- type (not written by django_taskq) reads as empty instead of failing the
-- whole page. One call per queue replaces about 25 commands and their
-- replies, which matters when a page refresh or a Prometheus scrape reads
-- a hundred queues.

local function call(...)
  local ok, reply = pcall(redis.call, ...)
  if ok then return reply end
  return nil
end

local now = redis.call('TIME')
local out = {tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)}

table.insert(out, call('ZCARD', KEYS[1]) or 0)
local first = call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first and first[2] then
  table.insert(out, first[2])
else
  table.insert(out, -1)
end
table.insert(out, call('XLEN', KEYS[2]) or 0)

for k = 3, #KEYS do
  local length = call('XLEN', KEYS[k]) or 0
  local pending, last, consumers = 0, nil, {}
  local groups = nil
  -- An empty stream can still have pending messages (their entries deleted).
  if length > 0 or redis.call('EXISTS', KEYS[k]) == 1 then
    groups = call('XINFO', 'GROUPS', KEYS[k])
  end
  for _, g in ipairs(groups or {}) do
    local name, count, id = nil, 0, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'pending' then count = tonumber(g[i + 1]) or 0 end
      if g[i] == 'last-delivered-id' then id = g[i + 1] end
    end
    if name == ARGV[1] then
      pending, last = count, id
    end
  end
  if pending > 0 then
    local summary = call('XPENDING', KEYS[k], ARGV[1])
    if summary and type(summary[4]) == 'table' then consumers = summary[4] end
  end
  local oldest = ''
  if length > pending then
    local start = '-'
    if last then start = '(' .. last end
    local entries = call('XRANGE', KEYS[k], start, '+', 'COUNT', 1)
    if entries and entries[1] then oldest = entries[1][1] end
  end
  table.insert(out, length)
  table.insert(out, pending)
  table.insert(out, oldest)
  table.insert(out, #consumers)
  for _, c in ipairs(consumers) do
    table.insert(out, c[1])
    table.insert(out, tonumber(c[2]) or 0)
  end
end
return out
