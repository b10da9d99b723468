-- expect: timeout
-- The body times out; unwinding then runs a __close that also runs away (and swallows).
return function(record)
  local guard <close> = setmetatable({}, { __close = function()
    while true do pcall(function() while true do end end) end
  end })
  while true do end
end
