-- expect: error: weak tables (__mode) are not allowed in plugins
-- A weak-valued metatable could later be switched to weak keys by a plain assignment (the
-- key exists, so no metamethod runs): even "v" is refused.
return function(record)
  local mt = { __mode = "v" }
  setmetatable({}, mt)
  mt.__mode = "k"
end
