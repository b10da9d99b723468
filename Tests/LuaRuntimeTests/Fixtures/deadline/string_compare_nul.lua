-- Lua compares strings with strcoll once per NUL-separated piece: one `<` of two 8 MiB
-- strings of NUL bytes takes tens of milliseconds, and a thousand of them between two count
-- hooks ran 19.5 s under a 200 ms timeout before the watchdog.
local a = ("\0"):rep(8 << 20)
local b = ("\0"):rep((8 << 20) - 1) .. "\1"
return function()
  local x
  while true do x = a < b end
end
