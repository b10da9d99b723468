-- expect: memory
-- Plain Lua recursion without end: the stack grows until the 32 MB limit (before Lua's own stack limit).
return function(record)
  local function f(n) return f(n + 1) + 1 end
  return f(1)
end
