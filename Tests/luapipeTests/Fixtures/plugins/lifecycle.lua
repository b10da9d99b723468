-- Logs its lifecycle on stderr, so tests can see setup and teardown run.
local plugin = { name = "lifecycle", version = "1.0.0", api = 1 }
function plugin.setup(config, ctx) ctx.log.info("setup ran") end
function plugin.process(record, ctx) end
function plugin.flush(ctx) ctx.log.info("flush ran") end
function plugin.teardown(ctx) ctx.log.info("teardown ran") end
return plugin
