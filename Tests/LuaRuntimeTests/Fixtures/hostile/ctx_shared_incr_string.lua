-- expect: error: bad argument #2 to 'incr'
-- ctx.shared:incr with a string step.
return function(record, ctx) ctx.shared:incr("k", "x") end
