-- expect: timeout
-- Exponential backtracking in a Lua pattern (a?^n a^n against a^n): the matcher checks the deadline.
return function(record)
  local n = 27
  record.m = ("a"):rep(n):match(("a?"):rep(n) .. ("a"):rep(n)) ~= nil
end
