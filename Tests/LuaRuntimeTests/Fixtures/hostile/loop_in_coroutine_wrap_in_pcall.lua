-- expect: timeout
-- A runaway coroutine made during the call, resumed inside pcall, again and again.
return function(record)
  while true do
    pcall(coroutine.wrap(function() while true do end end))
  end
end
