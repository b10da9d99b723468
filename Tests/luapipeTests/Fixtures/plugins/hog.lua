-- Fills its memory_mb with a table kept for the run, and hands over a large record per call.
local p = { name = "hog", version = "1.0.0", api = 1, parallel = true }
local keep = {}
local blob
function p.setup(config)
  local mb = config.mb or 60
  for i = 1, mb do keep[i] = string.rep(string.char(65 + i % 26), 1024 * 1000) end
  blob = string.rep("x", (config.out_kb or 512) * 1024)
end
function p.process(r, ctx) r.blob = blob end
return p
