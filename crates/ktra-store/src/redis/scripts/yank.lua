-- Sets or clears a version's yanked flag atomically, rewriting only that flag in its index
-- line, and records the audit event when the flag changed. An unchanged flag changes nothing
-- and returns the current file with the status 'unchanged'.
--
-- KEYS[1] crate hash (its `index` field is the index file), KEYS[2] versions hash,
-- KEYS[3] owners set, KEYS[4] pending hash, KEYS[5] pending-since sorted set; then the audit
-- stream (audit.lua).
-- ARGV[1] canonical name, ARGV[2] version key, ARGV[3] '1' to yank or '0' to unyank,
-- ARGV[4] actor id, ARGV[5] time in ms; then the audit event (audit.lua).
local name = redis.call('HGET', KEYS[1], 'name')
if not name then
  return {'no_crate'}
end
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 0 then
  return {'not_owner', name}
end
local raw = redis.call('HGET', KEYS[2], ARGV[2])
if not raw then
  return {'no_version', name}
end
local record = cjson.decode(raw)
local wanted = ARGV[3] == '1'
local content = redis.call('HGET', KEYS[1], 'index')
if record['yanked'] == wanted then
  local current = redis.call('HMGET', KEYS[1], 'revision', 'last_modified')
  return {'unchanged', tonumber(current[1]), content, current[2], name}
end
local from, to = '"yanked":false', '"yanked":true'
if not wanted then
  from, to = to, from
end
local lines = {}
local number = 0
local rewritten = false
for line in string.gmatch(content, '([^\n]*)\n') do
  if number == record['line'] then
    -- Escaped quotes inside values cannot form this pattern, so the first match is the field.
    local first, last = string.find(line, from, 1, true)
    if not first then
      return redis.error_reply('index line ' .. number .. ' has no yanked flag')
    end
    line = string.sub(line, 1, first - 1) .. to .. string.sub(line, last + 1)
    rewritten = true
  end
  lines[#lines + 1] = line
  number = number + 1
end
if not rewritten then
  return redis.error_reply('index line ' .. tostring(record['line']) .. ' is missing')
end
content = table.concat(lines, '\n') .. '\n'
record['yanked'] = wanted
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode(record))
local revision = commit_index_file(KEYS[1], KEYS[4], KEYS[5], ARGV[1], content, ARGV[5])
audit()
return {'ok', revision, content, ARGV[5], name}
