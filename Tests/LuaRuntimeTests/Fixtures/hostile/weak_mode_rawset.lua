-- expect: error: weak tables (__mode) are not allowed in plugins
-- rawset bypasses any __newindex: it refuses the key '__mode' on every table.
return function(record)
  local mt = {}
  setmetatable({}, mt)
  rawset(mt, "__mode", "k")
end
