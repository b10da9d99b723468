-- luapipe.json.decode of a text whose tape (9 bytes for each "1,") passes memory_mb: the
-- decoder must stop at the limit as it builds the tape.
local plugin = { name = "decode", version = "1.0.0", api = 1 }
local n
function plugin.setup(config) n = config.items end
function plugin.process(r)
  local text = "[" .. ("1,"):rep(n) .. "1]"
  r.n = #luapipe.json.decode(text)
end
return plugin
