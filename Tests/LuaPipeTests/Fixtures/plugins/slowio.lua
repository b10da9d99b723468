-- The I/O scenario: waits `ms` milliseconds per record (luapipe.sleep), then asks the host's
-- `lookup` function for the record's `key` (ctx.call), and emits one record when `emit` is set.
-- IOPlugin in IOScenarioTests.swift does the same in Swift.
local plugin = { name = "slowio", version = "1.0.0", api = 1, parallel = true }

function plugin.process(record, ctx)
  luapipe.sleep(record.ms / 1000)
  local answer = ctx.call("lookup", { key = record.key })
  record.value = answer.value
  record.n = ctx.record_number
  if record.emit then ctx.emit({ emitted_for = ctx.record_number }) end
end

return plugin
