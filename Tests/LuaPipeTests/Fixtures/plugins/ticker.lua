-- Emits a record on every tick.
local plugin = { name = "ticker", version = "1.0.0", api = 1 }
local ticks = 0
function plugin.process(record, ctx) end
function plugin.tick(ctx)
  ticks = ticks + 1
  ctx.emit({ tick = ticks })
end
return plugin
