-- expect: error: weak tables (__mode) are not allowed in plugins
-- The collector resolves weak-keyed tables (ephemerons) in passes inside C: a chain of 50k
-- entries takes ~13 s and cannot be interrupted. setmetatable refuses __mode.
return function(record)
  local weak = setmetatable({}, { __mode = "k" })
  local key = {}
  for i = 1, 50000 do local nxt = {} weak[key] = nxt key = nxt end
  collectgarbage()
end
