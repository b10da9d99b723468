-- expect: error: NaN cannot be written as JSON
-- NaN deep inside an emitted record.
return function(record, ctx) ctx.emit({ stats = { ratios = { 1.5, 0 / 0 } } }) end
