-- expect: error: __gc metamethods are not allowed
-- __gc = false marks the object for finalization; a function set later would then run unhooked.
return function(record)
  local mt = { __gc = false }
  local obj = setmetatable({}, mt)
  mt.__gc = function() while true do end end
end
