-- expect: timeout
-- Exponential backtracking in a Lua pattern (a?^n a^n against a^n), all inside C.
-- n = 26 takes seconds; every +1 roughly doubles it.
return function(record)
  local n = 26
  record.m = ("a"):rep(n):match(("a?"):rep(n) .. ("a"):rep(n)) ~= nil
end
