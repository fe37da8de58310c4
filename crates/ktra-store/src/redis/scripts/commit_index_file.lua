-- Prepended to every script that changes a crate's index file: the one way a change is
-- committed, as the embedded store's commit_crate_change does it.

-- Stores a crate's new index file, bumps its revision, and marks the crate unacknowledged
-- (keeping when the mark was first set). Returns the new revision.
--
-- The API derives the ETag from the revision and the time (IndexFile::etag) and reads no
-- `etag` field. The field is still written, with the same value, for replicas of earlier
-- versions that read it during a rolling update or after a rollback.
local function commit_index_file(crate_key, pending_key, since_key, canonical, content, now_ms)
  redis.call('HSET', crate_key, 'index', content)
  local revision = redis.call('HINCRBY', crate_key, 'revision', 1)
  redis.call('HSET', crate_key, 'last_modified', now_ms, 'etag', '"' .. revision .. '-' .. now_ms .. '"')
  redis.call('HSET', pending_key, canonical, revision)
  redis.call('ZADD', since_key, 'NX', now_ms, canonical)
  return revision
end

