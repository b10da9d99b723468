-- expect: error: weak tables (__mode) are not allowed in plugins
-- The metatable's own metatable hides itself (__metatable): still guarded.
return function(record)
  local mt = setmetatable({}, { __metatable = "locked" })
  setmetatable({}, mt)
  assert(getmetatable(mt) == "locked")
  mt.__mode = "k"
end
