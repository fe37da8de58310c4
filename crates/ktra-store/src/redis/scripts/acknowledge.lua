-- Clears a crate's unacknowledged mark unless a newer revision arrived meanwhile.
--
-- KEYS[1] pending hash, KEYS[2] pending-since sorted set. ARGV[1] canonical name, ARGV[2]
-- acknowledged revision.
local waiting = redis.call('HGET', KEYS[1], ARGV[1])
if waiting and tonumber(waiting) <= tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
