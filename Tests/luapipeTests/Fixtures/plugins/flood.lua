-- Emits `config.count` empty records in flush: tiny records whose per-record cost on the host
-- is many times their tape.
local plugin = { name = "flood", version = "1.0.0", api = 1 }
local count = 1000000
function plugin.setup(config) count = config.count or count end
function plugin.process(record, ctx) end
function plugin.flush(ctx) for _ = 1, count do ctx.emit({}) end end
return plugin
