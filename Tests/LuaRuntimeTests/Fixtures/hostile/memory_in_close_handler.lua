-- expect: memory
-- The memory bomb goes off in a __close handler, after the body returned.
return function(record)
  local guard <close> = setmetatable({}, { __close = function()
    local parts = {}
    while true do parts[#parts + 1] = ("y"):rep(100000) .. #parts end
  end })
end
