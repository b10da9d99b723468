-- expect: timeout
-- pcall(pcall(pcall(...))): each level swallows the stop once; the re-armed hook must win.
return function(record)
  while true do
    pcall(pcall, pcall, pcall, function() while true do pcall(error, "x") end end)
  end
end
