-- Stuck inside one VM instruction, where no hook can stop it: integer keys that all fall in
-- one slot make the rehash that grows the table quadratic (over 100 s here). Only the
-- shutdown rule ends such a run.
local plugin = { name = "stuck", version = "1.0.0", api = 1 }
function plugin.process(record, ctx)
  if record.stick then
    local t, m = {}, (1 << 19) - 1
    for i = 1, 300000 do t[i * m] = true end
  end
end
function plugin.teardown(ctx) ctx.log.info("teardown ran") end
return plugin
