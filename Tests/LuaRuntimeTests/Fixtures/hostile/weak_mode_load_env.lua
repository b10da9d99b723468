-- expect: error: weak tables (__mode) are not allowed in plugins
-- A chunk loaded with the metatable as its environment sets __mode as a global.
return function(record)
  local mt = {}
  setmetatable({}, mt)
  load("__mode = 'k'", "=env", "t", mt)()
end
