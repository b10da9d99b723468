-- Arithmetic on a 60 MB numeric string: each operation converts the whole string inside one
-- VM instruction (~16 ms), and about a thousand of them ran between two count hooks (25 s
-- under a 200 ms timeout before the watchdog).
local s = ("1"):rep(6e7)
return function()
  local x
  while true do
    x = s + 0; x = s * 1; x = -s; x = s // 1; x = s % 7
  end
end
