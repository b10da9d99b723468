-- Runs, in the lifecycle call its config names, something no count hook reaches: a rehash
-- that is quadratic inside one VM instruction, or a command through os.execute.
local plugin = { name = "stuckcall", version = "1.0.0", api = 1 }
local where, what
local function stuck()
  if what == "rehash" then
    local t, m = {}, (1 << 19) - 1
    for i = 1, 300000 do t[i * m] = true end
  else
    os.execute("sleep 30")
  end
end
function plugin.setup(config)
  where, what = config.where, config.what
  if where == "setup" then stuck() end
end
function plugin.process(r) return r end
function plugin.flush() if where == "flush" then stuck() end end
return plugin
