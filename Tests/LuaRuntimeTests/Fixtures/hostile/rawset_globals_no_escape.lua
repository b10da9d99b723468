-- expect: error: sandbox inventory ok
-- rawset on _G works (each state owns its globals) but reaches nothing: scan every global and library.
local allowed = {
  _G = 1, _VERSION = 1, assert = 1, error = 1, getmetatable = 1, ipairs = 1, load = 1, next = 1, pairs = 1,
  pcall = 1, print = 1, rawequal = 1, rawget = 1, rawlen = 1, rawset = 1, require = 1, select = 1,
  setmetatable = 1, tonumber = 1, tostring = 1, type = 1, xpcall = 1, collectgarbage = 1, warn = 1,
  coroutine = 1, math = 1, os = 1, string = 1, table = 1, utf8 = 1, luapipe = 1,
}
local forbidden = { "dump", "execute", "exit", "getenv", "rename", "tmpname", "popen", "open", "loadlib",
  "searchpath", "getregistry", "sethook", "setlocale", "dofile", "loadfile", "_emit", "_limit_hit", "cpath" }
return function(record)
  rawset(_G, "probe", true)
  assert(rawget(_G, "probe") == true and probe == true)
  local extra = {}
  for k, v in pairs(_G) do
    if not allowed[k] and k ~= "probe" then extra[#extra + 1] = tostring(k) end
    if type(v) == "table" then
      for _, name in ipairs(forbidden) do
        if rawget(v, name) ~= nil then extra[#extra + 1] = tostring(k) .. "." .. name end
      end
    end
  end
  for _, name in ipairs(forbidden) do
    if rawget(_G, name) ~= nil then extra[#extra + 1] = name end
  end
  if os.remove ~= nil then extra[#extra + 1] = "os.remove" end
  if getmetatable(_G) ~= nil then extra[#extra + 1] = "a metatable on _G" end
  if #extra > 0 then error("unexpected globals: " .. table.concat(extra, ", ")) end
  error("sandbox inventory ok")
end
