-- Takes a free lease, or renews one the holder already has.
--
-- KEYS[1] lease key. ARGV[1] holder, ARGV[2] time to live in ms.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
