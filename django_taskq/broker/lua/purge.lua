-- purge.lua: delete every waiting (not yet delivered) message of one queue.
--
-- Every key is of one queue (one hash tag).
-- KEYS[1]      the queue's delayed set
-- KEYS[2..]    the queue's streams
-- ARGV[1]  group
--
-- Messages a worker has fetched (in the group's pending list, running or
-- about to) are left alone; everything after the group's last delivered id
-- is deleted, and every message of a stream no worker has read yet (no
-- group). The delayed set is emptied. One atomic step, so a message fetched
-- at the same moment is either delivered or purged, never both.
-- Returns the number of messages deleted.

local removed = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
for k = 2, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    local last = nil
    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[k])
    if ok then
      for _, g in ipairs(groups) do
        local name, id = nil, nil
        for i = 1, #g, 2 do
          if g[i] == 'name' then name = g[i + 1] end
          if g[i] == 'last-delivered-id' then id = g[i + 1] end
        end
        if name == ARGV[1] then last = id end
      end
    end
    if last == nil then
      removed = removed + redis.call('XLEN', KEYS[k])
      redis.call('XTRIM', KEYS[k], 'MAXLEN', 0)
    else
      while true do
        local entries = redis.call('XRANGE', KEYS[k], '(' .. last, '+', 'COUNT', 1000)
        if #entries == 0 then break end
        local ids = {}
        for _, e in ipairs(entries) do table.insert(ids, e[1]) end
        removed = removed + redis.call('XDEL', KEYS[k], unpack(ids))
      end
    end
  end
end
return removed
