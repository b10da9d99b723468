-- expect: error: bad argument #2 to 'set'
-- ctx.shared:set with a function value.
return function(record, ctx) ctx.shared:set("k", print) end
