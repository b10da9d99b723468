-- Its flush never ends by itself (only its timeout_ms, or a halting run, stops it).
local plugin = { name = "flushloop", version = "1.0.0", api = 1 }
function plugin.process(record, ctx) end
function plugin.flush(ctx) while true do end end
return plugin
