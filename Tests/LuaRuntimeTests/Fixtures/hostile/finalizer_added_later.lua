-- expect: error: no finalizer ran
-- __gc added after setmetatable: Lua must not run it (a finalizer runs with the hook off).
return function(record)
  local ran = false
  local mt = {}
  do local obj = setmetatable({}, mt) end
  mt.__gc = function() ran = true end
  collectgarbage("collect")
  collectgarbage("collect")
  if ran then return { escaped = "a finalizer ran" } end
  error("no finalizer ran")
end
