-- expect: error: stack overflow
-- __tostring raises the same object again: the message handler recurses into itself.
return function(record)
  local e = setmetatable({}, {})
  getmetatable(e).__tostring = function() error(e) end
  error(e)
end
