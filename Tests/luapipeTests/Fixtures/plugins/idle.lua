-- Parallel and does nothing: an entry that only costs its call.
local plugin = { name = "idle", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx) end
return plugin
