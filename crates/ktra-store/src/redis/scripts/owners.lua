-- Adds or removes owners atomically if the actor owns the crate; never leaves a crate without
-- an owner. Records the audit event, named for the users changed, when any changed.
--
-- KEYS[1] crate hash, KEYS[2] owners set; then the audit stream (audit.lua).
-- ARGV[1] 'add' or 'remove', ARGV[2] actor id ('' for an administrator, who need not own the
-- crate), ARGV[3..] user ids, each followed by the user's name; then the audit event
-- (audit.lua).
local name = redis.call('HGET', KEYS[1], 'name')
if not name then
  return {'no_crate'}
end
if ARGV[2] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  return {'not_owner', name}
end
local changed, names, seen = {}, {}, {}
local remaining = redis.call('SCARD', KEYS[2])
for i = 3, #ARGV, 2 do
  local owner = redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1
  if owner == (ARGV[1] == 'remove') and not seen[ARGV[i]] then
    seen[ARGV[i]] = true
    changed[#changed + 1] = ARGV[i]
    names[#names + 1] = ARGV[i + 1]
    remaining = remaining + (owner and -1 or 1)
  end
end
if remaining < 1 then
  return {'last_owner', name}
end
if #changed == 0 then
  return {'ok', changed}
end
for _, id in ipairs(changed) do
  if ARGV[1] == 'add' then
    redis.call('SADD', KEYS[2], id)
  else
    redis.call('SREM', KEYS[2], id)
  end
end
audit(names)
return {'ok', changed}
