-- expect: error: attempt to index a boolean value
-- The shared string metatable is protected: getmetatable("") gives false, not the table.
return function(record)
  getmetatable("").__index = function(s, k) while true do end end
end
