-- expect: error: stack overflow
-- Recursion through a C function (gsub calls back into Lua): the C stack limit must stop it.
return function(record)
  local function f() return (("x"):gsub(".", f)) end
  f()
end
