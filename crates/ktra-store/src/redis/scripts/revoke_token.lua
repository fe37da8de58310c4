-- Revokes one token if it belongs to the user.
--
-- KEYS[1] user's tokens set, KEYS[2] token hash; then the audit stream (audit.lua).
-- ARGV[1] token id; then the audit event (audit.lua).
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[2])
audit()
return 1
