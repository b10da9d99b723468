-- expect: error: weak tables (__mode) are not allowed in plugins
-- The record itself as a metatable, with a __mode field from the input, not read yet.
return function(record)
  record.__mode = "k"
  setmetatable({}, record)
end
