-- expect: timeout
-- The memory error is caught by pcall and the bomb goes off again: the deadline ends it (the state is replaced).
return function(record)
  while true do
    pcall(function()
      local t = {}
      while true do t[#t + 1] = ("x"):rep(64) .. #t end
    end)
  end
end
