-- ctx.record_number: the current call's record, and after the calls, the last one's.
local fns = {}

function fns.process(r, ctx) r.n = ctx.record_number end

function fns.after(ctx) return { last = ctx.record_number } end

return fns
