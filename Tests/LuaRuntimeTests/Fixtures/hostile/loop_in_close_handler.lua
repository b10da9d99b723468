-- expect: timeout
-- A to-be-closed variable whose __close runs away when process returns.
return function(record)
  local guard <close> = setmetatable({}, { __close = function() while true do end end })
  return nil
end
