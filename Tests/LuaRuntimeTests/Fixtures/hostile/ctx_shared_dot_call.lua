-- expect: error: bad argument #1 to 'incr'
-- ctx.shared.incr("k") (dot, not colon): "k" becomes self and the key is nil.
return function(record, ctx) ctx.shared.incr("k") end
