-- Counts records in ctx.shared ("n"), one incr per record; at the end of input emits what it
-- sees of the count then ({ total = N }, null when the store cannot be read). `config.seconds`
-- waits that long first (slow records).
local plugin = { name = "shared_count", version = "1.0.0", api = 1 }
local seconds = 0
function plugin.setup(config, ctx) seconds = config.seconds or 0 end
function plugin.process(record, ctx)
  if seconds > 0 then luapipe.sleep(seconds) end
  record.n = ctx.shared:incr("n", 1)
end
function plugin.flush(ctx)
  local ok, n = pcall(ctx.shared.get, ctx.shared, "n")
  ctx.emit({ total = ok and n or luapipe.null })
end
return plugin
