-- lease_release.lua: give up the beat leader lease and tell the followers.
--
-- KEYS[1]  lease     the leader lease key (value: holder id)
-- ARGV[1]  holder    this beat's holder id
-- ARGV[2]  channel   pub/sub channel followers wait on
--
-- Returns 1 when released, 0 when the lease was not ours (nothing changed).
-- The delete and the notice are one step, so a follower woken by the notice
-- always finds the lease free.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
