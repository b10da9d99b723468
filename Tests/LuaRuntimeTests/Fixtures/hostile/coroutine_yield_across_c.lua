-- expect: error: attempt to yield across a C-call boundary
-- Yielding from inside a sort comparator (a C frame) inside a coroutine.
return function(record)
  coroutine.wrap(function()
    table.sort({ 3, 2, 1 }, function(a, b) coroutine.yield() return a < b end)
  end)()
end
