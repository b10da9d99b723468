-- expect: timeout
-- The coroutine is made when the chunk loads, long before the call with the deadline.
local co = coroutine.wrap(function() while true do end end)
return function(record) co() end
