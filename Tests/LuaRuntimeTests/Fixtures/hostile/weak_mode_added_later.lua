-- expect: error: weak tables (__mode) are not allowed in plugins
-- __mode added to a metatable already in use: Lua reads it at the next collection.
return function(record)
  local mt = {}
  local weak = setmetatable({}, mt)
  mt.__mode = "k"
  local key = {}
  for i = 1, 50000 do local nxt = {} weak[key] = nxt key = nxt end
  collectgarbage()
end
