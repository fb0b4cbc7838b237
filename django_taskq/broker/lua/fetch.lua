-- fetch.lua: read up to COUNT new messages, most preferred stream first.
--
-- KEYS     streams in order of preference (queue order, then priority 9..0)
-- ARGV[1]  group           consumer group name
-- ARGV[2]  consumer        this consumer's name
-- ARGV[3]  count           most messages to return
-- ARGV[4]  revoked prefix  "<prefix>:revoked:"; a message whose task id has a
--                          key there is flagged revoked
--
-- Returns a flat list, six items a message:
--   stream, entry id, task id, body, delivery count, revoked (0/1)
-- Entries join the group's pending list of ARGV[2] as they are read, so a
-- crash after this call loses nothing: the entries stay pending on the server.
-- A missing group raises NOGROUP; the caller creates the groups and retries.

local want = tonumber(ARGV[3])
local out = {}
for _, key in ipairs(KEYS) do
  if want <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', key, '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      local fields = entry[2]
      local task_id, body, dc = '', '', '0'
      for i = 1, #fields, 2 do
        local name = fields[i]
        if name == 'i' then task_id = fields[i + 1]
        elseif name == 'b' then body = fields[i + 1]
        elseif name == 'dc' then dc = fields[i + 1] end
      end
      local revoked = 0
      if task_id ~= '' and redis.call('EXISTS', ARGV[4] .. task_id) == 1 then
        revoked = 1
      end
      table.insert(out, key)
      table.insert(out, entry[1])
      table.insert(out, task_id)
      table.insert(out, body)
      table.insert(out, dc)
      table.insert(out, revoked)
      want = want - 1
    end
  end
end
return out
