-- expect: timeout
-- coroutine.resume returns false instead of raising: a new runaway coroutine each time.
return function(record)
  while true do
    pcall(function()
      local co = coroutine.create(function() while true do end end)
      coroutine.resume(co)
    end)
  end
end
