-- expect: error: __gc metamethods are not allowed
return function(record)
  setmetatable({}, { __gc = function() while true do end end })
end
