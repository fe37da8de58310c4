-- Adds a token to a user unless the user is disabled (or gone).
--
-- KEYS[1] user hash, KEYS[2] user's tokens set, KEYS[3] token hash; then the audit stream
-- (audit.lua).
-- ARGV[1] token id, ARGV[2] secret hash (hex), ARGV[3] created (ms), ARGV[4] token name,
-- ARGV[5] token expiry (ms, or ''), ARGV[6] token scope (JSON), ARGV[7] when to drop the
-- token's record (ms, or ''); then the audit event (audit.lua).
local user = redis.call('HMGET', KEYS[1], 'id', 'name', 'disabled')
if not user[1] then
  return 'no_user'
end
if user[3] == '1' then
  return 'disabled'
end
redis.call('HSET', KEYS[3], 'user', user[1], 'user_name', user[2], 'secret_hash', ARGV[2], 'created_at', ARGV[3],
  'name', ARGV[4], 'expires_at', ARGV[5], 'scope', ARGV[6])
if ARGV[7] ~= '' then
  redis.call('PEXPIREAT', KEYS[3], ARGV[7])
end
redis.call('SADD', KEYS[2], ARGV[1])
audit()
return 'ok'
