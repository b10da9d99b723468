-- expect: timeout
-- The host's message handler calls __tostring; the hook still fires inside it.
return function(record)
  error(setmetatable({}, { __tostring = function() while true do end end }))
end
