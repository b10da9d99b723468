-- Blocks inside C (os.execute waits for `sleep`), where no hook can stop it: only the
-- shutdown rule ends such a run. Needs `allow: [os]`.
local plugin = { name = "stuck", version = "1.0.0", api = 1 }
function plugin.process(record, ctx)
  if record.stick then os.execute("sleep " .. tostring(record.stick)) end
end
function plugin.teardown(ctx) ctx.log.info("teardown ran") end
return plugin
