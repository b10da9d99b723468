-- expect: error: ctx.emit expects a record
-- ctx.emit with a list.
return function(record, ctx) ctx.emit({ 1, 2, 3 }) end
