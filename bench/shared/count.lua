-- One ctx.shared:incr per record (scripts/bench-shared.sh).
local plugin = { name = "count", version = "1.0.0", api = 1 }
function plugin.process(record, ctx) record.n = ctx.shared:incr("n", 1) end
return plugin
