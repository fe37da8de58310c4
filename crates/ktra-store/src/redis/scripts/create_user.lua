-- Creates a user holding one token, unless the name is taken; with an invitation key, only if
-- the invitation exists, and uses it up.
--
-- KEYS[1] user hash, KEYS[2] user name by id, KEYS[3] token hash, KEYS[4] user's tokens set,
-- KEYS[5] (optional) invitation key; then the audit stream (audit.lua).
-- ARGV[1] id, ARGV[2] name, ARGV[3] password hash, ARGV[4] created (ms), ARGV[5] token id,
-- ARGV[6] token secret hash (hex), ARGV[7] token name, ARGV[8] token expiry (ms, or ''),
-- ARGV[9] token scope (JSON), ARGV[10] when to drop the token's record (ms, or ''); then the
-- audit event (audit.lua).
-- The invitation is checked first, so that a guessed code learns nothing about which names
-- exist.
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 0 then
  return -1
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if KEYS[5] then
  redis.call('DEL', KEYS[5])
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'name', ARGV[2], 'password_hash', ARGV[3], 'created_at', ARGV[4])
redis.call('SET', KEYS[2], string.lower(ARGV[2]))
redis.call('HSET', KEYS[3], 'user', ARGV[1], 'user_name', ARGV[2], 'secret_hash', ARGV[6], 'created_at', ARGV[4],
  'name', ARGV[7], 'expires_at', ARGV[8], 'scope', ARGV[9])
if ARGV[10] ~= '' then
  redis.call('PEXPIREAT', KEYS[3], ARGV[10])
end
redis.call('SADD', KEYS[4], ARGV[5])
audit()
return 1
