-- expect: timeout
-- A quadratic string.find runs in C: no Lua instruction, no hook. 4e4 chars take seconds;
-- 4e6 chars would take days.
return function(record)
  local s = ("a"):rep(4e4)
  record.found = s:find(".-b") ~= nil
end
