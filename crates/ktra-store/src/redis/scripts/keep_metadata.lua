-- Keeps the metadata and README of a version that has no metadata yet (the backfill): an
-- existing version's record is never replaced, and a missing version gets nothing.
--
-- KEYS[1] versions hash, KEYS[2] version metadata hash, KEYS[3] READMEs hash.
-- ARGV[1] version key, ARGV[2] metadata (JSON), ARGV[3] README, ARGV[4] '1' when there is one.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
return 1
