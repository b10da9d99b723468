-- expect: error: attempt to call a nil value (method 'dump')
-- Rawsetting into the string table changes this state's methods only; it finds nothing new.
return function(record)
  rawset(string, "upper", function(s) return "pwned" end)
  assert(("x"):upper() == "pwned")
  local f = ("x").dump
  assert(f == nil and ("x").format ~= nil)
  return ("x"):dump()
end
