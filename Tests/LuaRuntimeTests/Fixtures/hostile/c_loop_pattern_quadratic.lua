-- expect: timeout
-- A quadratic string.find runs in C: no Lua instruction, no hook. 5e4 chars take ~8 s;
-- 5e6 chars would take about a day.
return function(record)
  local s = ("a"):rep(5e4)
  record.found = s:find(".-b") ~= nil
end
