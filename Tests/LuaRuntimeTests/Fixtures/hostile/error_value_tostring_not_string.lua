-- expect: error: (error object is a table value)
-- __tostring returns a table, not a string: the handler must fall back, not crash.
return function(record)
  error(setmetatable({}, { __tostring = function() return {} end }))
end
