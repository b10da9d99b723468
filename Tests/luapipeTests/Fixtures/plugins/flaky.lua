-- Fails on about 1% of records, chosen by the record's id (so runs are repeatable), and
-- emits an extra record on about 1% more. Parallel: runs as several instances.
local plugin = { name = "flaky", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx)
  local h = (record.id * 2654435761) % 1000
  if h < 10 then error("injected failure for id " .. record.id) end
  if h >= 990 then ctx.emit({ extra_for = record.id }) end
  record.ok = true
end
return plugin
