-- Its setup runs until its timeout_ms.
local plugin = { name = "setuploop", version = "1.0.0", api = 1 }
function plugin.setup(config, ctx) while true do end end
function plugin.process(record, ctx) end
return plugin
