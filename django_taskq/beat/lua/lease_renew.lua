-- lease_renew.lua: extend the beat leader lease, only if we still hold it.
--
-- KEYS[1]  lease     the leader lease key (value: holder id)
-- KEYS[2]  led       when a leader last held the lease (epoch ms; same tag)
-- ARGV[1]  holder    this beat's holder id
-- ARGV[2]  ttl ms    new time to live of the lease
-- ARGV[3]  now ms    epoch milliseconds
--
-- Returns 1 when renewed, 0 when the lease is held by another beat or has
-- expired (the caller must stop dispatching at once).

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  redis.call('SET', KEYS[2], ARGV[3])
  return 1
end
return 0
