-- Adds or removes owners atomically if the actor owns the crate; never leaves a crate without
-- an owner.
--
-- KEYS[1] crate hash, KEYS[2] owners set.
-- ARGV[1] 'add' or 'remove', ARGV[2] actor id ('' for an administrator, who need not own the
-- crate), ARGV[3..] user ids.
local name = redis.call('HGET', KEYS[1], 'name')
if not name then
  return {'no_crate'}
end
if ARGV[2] ~= '' and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  return {'not_owner', name}
end
local changed = {}
if ARGV[1] == 'add' then
  for i = 3, #ARGV do
    if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
      changed[#changed + 1] = ARGV[i]
    end
  end
  return {'ok', changed}
end
local remaining = redis.call('SCARD', KEYS[2])
for i = 3, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
    remaining = remaining - 1
    changed[#changed + 1] = ARGV[i]
  end
end
if remaining < 1 then
  return {'last_owner', name}
end
for _, id in ipairs(changed) do
  redis.call('SREM', KEYS[2], id)
end
return {'ok', changed}
