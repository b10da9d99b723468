-- expect: error: the table contains itself (a cycle)
-- A returned record that contains itself.
return function(record)
  local out = { name = "x", child = {} }
  out.child.parent = out
  return out
end
