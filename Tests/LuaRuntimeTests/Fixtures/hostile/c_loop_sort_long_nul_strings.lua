-- expect: timeout
-- table.sort of many references to one long string of NUL bytes: Lua compares strings with
-- strcoll once per NUL-separated piece, so one comparison takes milliseconds. The sort checks
-- the deadline at every comparison of long strings, not every 1024.
return function(record)
  local s = ("\0"):rep(4 << 20)
  local t = {}
  for i = 1, 3000 do t[i] = s end
  table.sort(t)
end
