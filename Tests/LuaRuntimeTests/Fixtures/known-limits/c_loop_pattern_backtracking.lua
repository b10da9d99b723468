-- expect: timeout
-- Exponential backtracking in a Lua pattern (a?^n a^n against a^n), all inside C.
-- n = 27 takes ~7 s; every +1 roughly doubles it.
return function(record)
  local n = 27
  record.m = ("a"):rep(n):match(("a?"):rep(n) .. ("a"):rep(n)) ~= nil
end
