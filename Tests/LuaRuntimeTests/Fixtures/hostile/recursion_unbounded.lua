-- expect: error: stack overflow
-- Plain Lua recursion without end (not a tail call): Lua's stack limit must stop it.
return function(record)
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end
