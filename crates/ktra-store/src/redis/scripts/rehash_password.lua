-- Replaces a password hash with a new hash of the same password if it is still the one the
-- caller checked; the user's tokens stay.
--
-- KEYS[1] user hash. ARGV[1] old password hash, ARGV[2] new password hash.
if redis.call('HGET', KEYS[1], 'password_hash') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'password_hash', ARGV[2])
return 1
