-- expect: error: bad argument #1 to 'emit'
-- ctx.emit with a string.
return function(record, ctx) ctx.emit("not a record") end
