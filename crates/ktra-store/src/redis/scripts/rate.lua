-- Counts one hit in a fixed window; the first hit starts the window.
--
-- KEYS[1] counter key. ARGV[1] window in ms.
-- Returns {hits in this window, ms until the window ends}.
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if hits == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
