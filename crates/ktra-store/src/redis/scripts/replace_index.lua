-- Replaces a crate's whole index file if its revision is still the expected one, bumping the
-- revision and marking it unacknowledged, as a publish does.
--
-- KEYS[1] crate hash (its `index` field is the index file), KEYS[2] pending hash, KEYS[3]
-- pending-since sorted set.
-- ARGV[1] canonical name, ARGV[2] expected revision, ARGV[3] new content, ARGV[4] time in ms.
local current = redis.call('HMGET', KEYS[1], 'name', 'revision')
local name = current[1]
if not name then
  return {'no_crate'}
end
if tonumber(current[2]) ~= tonumber(ARGV[2]) then
  return {'moved', name}
end
local content = ARGV[3]
local revision = commit_index_file(KEYS[1], KEYS[2], KEYS[3], ARGV[1], content, ARGV[4])
return {'ok', revision, content, ARGV[4], name}
