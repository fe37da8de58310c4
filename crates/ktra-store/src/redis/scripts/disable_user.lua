-- Disables a user, revoking every token and invitation of theirs, or enables them again.
--
-- KEYS[1] user hash; then the audit stream (audit.lua). ARGV[1] '1' to disable, '0' to enable, ARGV[2] the user's tokens set key
-- prefix (the id follows), ARGV[3] token key prefix, ARGV[4] the user's invitations set key
-- prefix (the id follows), ARGV[5] invitation key prefix; then the audit event (audit.lua).
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  return {'no_user'}
end
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'disabled', '1')
  local set = ARGV[2] .. id
  for _, token in ipairs(redis.call('SMEMBERS', set)) do
    redis.call('DEL', ARGV[3] .. token)
  end
  redis.call('DEL', set)
  local invitations = ARGV[4] .. id
  for _, code in ipairs(redis.call('SMEMBERS', invitations)) do
    redis.call('DEL', ARGV[5] .. code)
  end
  redis.call('DEL', invitations)
else
  redis.call('HDEL', KEYS[1], 'disabled')
end
audit()
return {'ok', id, redis.call('HGET', KEYS[1], 'name')}
