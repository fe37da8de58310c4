-- Replaces a password if it is still the one the caller checked and the user is not disabled,
-- revoking every token of the user and storing one new token.
--
-- KEYS[1] user hash, KEYS[2] user's tokens set, KEYS[3] new token hash; then the audit
-- stream (audit.lua).
-- ARGV[1] old password hash, ARGV[2] new password hash, ARGV[3] token key prefix,
-- ARGV[4] new token id, ARGV[5] new token secret hash (hex), ARGV[6] created (ms),
-- ARGV[7] token name, ARGV[8] token expiry (ms, or ''), ARGV[9] token scope (JSON),
-- ARGV[10] when to drop the token's record (ms, or ''); then the audit event (audit.lua).
local current = redis.call('HMGET', KEYS[1], 'password_hash', 'disabled')
if current[1] ~= ARGV[1] then
  return 0
end
if current[2] == '1' then
  return -1
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', ARGV[3] .. id)
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'password_hash', ARGV[2])
local user = redis.call('HMGET', KEYS[1], 'id', 'name')
redis.call('HSET', KEYS[3], 'user', user[1], 'user_name', user[2], 'secret_hash', ARGV[5], 'created_at', ARGV[6],
  'name', ARGV[7], 'expires_at', ARGV[8], 'scope', ARGV[9])
if ARGV[10] ~= '' then
  redis.call('PEXPIREAT', KEYS[3], ARGV[10])
end
redis.call('SADD', KEYS[2], ARGV[4])
audit()
return 1
