-- expect: timeout
-- The loop hides in an __index metamethod, reached by a plain field read.
return function(record)
  local t = setmetatable({}, { __index = function(t, k) while true do end end })
  record.x = t.anything
end
