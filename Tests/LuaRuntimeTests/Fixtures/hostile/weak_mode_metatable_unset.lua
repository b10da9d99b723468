-- expect: error: weak tables (__mode) are not allowed in plugins
-- Taking its metatable away from a table in use as a metatable does not unguard it.
return function(record)
  local mt = {}
  setmetatable({}, mt)
  setmetatable(mt, nil)
  setmetatable(mt, { __newindex = function(t, k, v) rawset(t, k, v) end })
  mt.__mode = "k"
end
