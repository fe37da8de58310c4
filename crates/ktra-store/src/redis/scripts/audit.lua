-- Prepended to every script whose change the audit log records: the script's last key is the
-- audit stream, and its last two arguments are the event (JSON) and how many events the stream
-- keeps. They are taken off KEYS and ARGV here, so the script's own keys and arguments keep
-- their numbers. The script calls audit() once it has changed something, so the event is
-- written in the same atomic step as the change, and only when there was one.
local audit_stream = table.remove(KEYS)
local audit_retain = table.remove(ARGV)
local audit_event = table.remove(ARGV)

-- Appends the event; `users`, when given, are the names an owner change changed, which lead
-- the event's detail as `AuditEvent::naming_users` writes it.
local function audit(users)
  local event = audit_event
  if users then
    local decoded = cjson.decode(event)
    local named = {}
    for i, user in ipairs(users) do
      named[i] = '`' .. user .. '`'
    end
    local names = table.concat(named, ', ')
    if type(decoded['detail']) == 'string' then
      names = names .. ' ' .. decoded['detail']
    end
    decoded['detail'] = names
    event = cjson.encode(decoded)
  end
  redis.call('XADD', audit_stream, 'MAXLEN', '~', audit_retain, '*', 'event', event)
end

