-- expect: error: C stack overflow
-- load(string.rep("(", 1e5)): the parser recurses per level; it must fail, not crash.
return function(record)
  local f, err = load(string.rep("(", 1e5))
  assert(f == nil, "compiled?")
  error(err, 0)
end
