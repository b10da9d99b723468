-- expect: error: attempt to yield from outside a coroutine
-- Yielding from process itself would suspend the host's call.
return function(record) coroutine.yield(record) end
