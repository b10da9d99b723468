-- Parallel: adds the name of the entry that saw the record to its `seen` list, so a test can
-- tell that every record went through every entry exactly once, in order.
local plugin = { name = "stamp", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx)
  local seen = record.seen or luapipe.array()
  seen[#seen + 1] = ctx.plugin.id
  record.seen = seen
end
return plugin
