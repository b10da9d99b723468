-- Counts records and emits the count on flush; its tests all pass.
local plugin = { name = "counter", version = "1.0.0", api = 1 }
local n = 0
function plugin.process(record, ctx)
  if record.bad then error("bad record") end
  n = n + 1
  record.seq = n
end
function plugin.flush(ctx) ctx.emit({ count = n }) end
plugin.tests = {
  { name = "numbers records and counts them on flush",
    input = { { a = 1 }, { a = 2 } },
    expect = { { a = 1, seq = 1 }, { a = 2, seq = 2 }, { count = 2 } } },
  { name = "refuses a bad record", input = { bad = true }, expect_error = "bad record" },
}
return plugin
