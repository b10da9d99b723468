-- expect: error: weak tables (__mode) are not allowed in plugins
-- A class whose metatable is another class (inheritance): the metatable of the metatable is
-- the plugin's, and the plugin clears its __newindex before it sets __mode on the class.
return function(record)
  local Base = {}
  Base.__index = Base
  local Derived = setmetatable({}, { __index = Base })
  Derived.__index = Derived
  local obj = setmetatable({}, Derived)
  local mm = getmetatable(Derived)
  mm.__newindex = nil
  rawset(mm, "__newindex", nil)
  Derived.__mode = "k"
end
