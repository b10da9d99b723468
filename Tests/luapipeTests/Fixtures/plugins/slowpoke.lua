-- Spends `config.seconds` of CPU on each record (default 0.2), then logs its teardown.
local plugin = { name = "slowpoke", version = "1.0.0", api = 1 }
local seconds = 0.2
function plugin.setup(config, ctx) seconds = config.seconds or seconds end
function plugin.process(record, ctx)
  local t = os.clock() + seconds
  while os.clock() < t do end
end
function plugin.flush(ctx) ctx.log.info("flush ran") end
function plugin.teardown(ctx) ctx.log.info("teardown ran") end
return plugin
