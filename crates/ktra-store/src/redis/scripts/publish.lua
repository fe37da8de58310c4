-- Publishes one version atomically: name collision, ownership and version checks, then the
-- version record, the index line, the revision, the unacknowledged mark and the search index.
--
-- KEYS[1] crate hash (its `index` field is the index file), KEYS[2] versions hash,
-- KEYS[3] owners set, KEYS[4] pending hash, KEYS[5] crate names sorted set,
-- KEYS[6] pending-since sorted set, KEYS[7] version metadata hash, KEYS[8] READMEs hash,
-- KEYS[9..] search index sets; then the audit stream (audit.lua).
-- ARGV[1] canonical name, ARGV[2] name as published, ARGV[3] version key, ARGV[4] version,
-- ARGV[5] checksum, ARGV[6] blob key, ARGV[7] index line, ARGV[8] publisher id,
-- ARGV[9] description, ARGV[10] '1' when there is a description, ARGV[11] time in ms,
-- ARGV[12] '1' when the crate must exist, '0' when it must be new, '' for either,
-- ARGV[13] the version's metadata (JSON), ARGV[14] its README, ARGV[15] '1' when it has one;
-- then the audit event (audit.lua).
local existing = redis.call('HGET', KEYS[1], 'name')
if (ARGV[12] == '1' and not existing) or (ARGV[12] == '0' and existing) then
  return {'changed', ARGV[2]}
end
if existing then
  if existing ~= ARGV[2] then
    return {'taken', existing}
  end
  if redis.call('SISMEMBER', KEYS[3], ARGV[8]) == 0 then
    return {'not_owner', existing}
  end
  local duplicate = redis.call('HGET', KEYS[2], ARGV[3])
  if duplicate then
    return {'duplicate', cjson.decode(duplicate)['vers']}
  end
else
  redis.call('HSET', KEYS[1], 'name', ARGV[2], 'revision', 0, 'version_count', 0,
    'created_at', ARGV[11])
  redis.call('SADD', KEYS[3], ARGV[8])
  redis.call('ZADD', KEYS[5], 0, ARGV[1])
end
local line_number = tonumber(redis.call('HGET', KEYS[1], 'version_count'))
redis.call('HSET', KEYS[2], ARGV[3], cjson.encode({
  vers = ARGV[4], line = line_number, cksum = ARGV[5], blob_key = ARGV[6], yanked = false,
  published_at = tonumber(ARGV[11]), publisher = tonumber(ARGV[8])
}))
redis.call('HSET', KEYS[7], ARGV[3], ARGV[13])
if ARGV[15] == '1' then
  redis.call('HSET', KEYS[8], ARGV[3], ARGV[14])
end
local content = (redis.call('HGET', KEYS[1], 'index') or '') .. ARGV[7] .. '\n'
local revision = commit_index_file(KEYS[1], KEYS[4], KEYS[6], ARGV[1], content, ARGV[11])
redis.call('HSET', KEYS[1], 'version_count', line_number + 1, 'newest_version', ARGV[4])
if ARGV[10] == '1' then
  redis.call('HSET', KEYS[1], 'description', ARGV[9])
else
  redis.call('HDEL', KEYS[1], 'description')
end
audit()
for i = 9, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[1])
end
return {'ok', revision, content, ARGV[11], ARGV[2]}
