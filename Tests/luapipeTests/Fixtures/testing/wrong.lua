-- A plugin whose tests are wrong on purpose: `luapipe test` must fail and show the diff.
local plugin = { name = "wrong", version = "1.0.0", api = 1 }
function plugin.process(record, ctx) record.v = record.v * 2 end
plugin.tests = {
  { name = "doubles", input = { v = 2, keep = "x" }, expect = { { v = 5, keep = "x" } } },
  { name = "expects an error that never comes", input = { v = 1 }, expect_error = "nope" },
  { name = "passes", input = { v = 3 }, expect = { { v = 6 } } },
}
return plugin
