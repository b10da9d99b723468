-- Prints in setup, process and flush: the test checks on which thread that runs.
local plugin = { name = "printer", version = "1.0.0", api = 1 }
function plugin.setup(config, ctx) print("setup") end
function plugin.process(record, ctx) print("record", record.n) end
function plugin.flush(ctx) print("flush") end
return plugin
