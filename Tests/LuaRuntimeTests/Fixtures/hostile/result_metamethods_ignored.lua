-- expect: error: NaN cannot be written as JSON
-- __pairs/__index/__len would hide the NaN or spin; the converter reads raw, so it sees the NaN.
return function(record)
  local spin = function() while true do end end
  return setmetatable({ bad = 0 / 0 }, { __pairs = spin, __index = spin, __len = spin, __newindex = spin })
end
