-- expect: error: tostring boom
-- The error value's __tostring raises: the message handler meets a second error.
return function(record)
  error(setmetatable({}, { __tostring = function() error("tostring boom") end }))
end
