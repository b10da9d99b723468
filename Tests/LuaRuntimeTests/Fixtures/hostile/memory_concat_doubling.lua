-- expect: memory
-- s = s .. s with the collector stopped: 1, 2, 4, ... 32 MB within a few steps.
return function(record)
  collectgarbage("stop")
  local s = "0123456789abcdef"
  while true do s = s .. s end
end
