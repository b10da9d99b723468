-- expect: error: stack overflow
-- Nested pcalls (C calls) down to the C stack limit; each level rethrows what it caught.
return function(record)
  local function f()
    local ok, err = pcall(f)
    error(err, 0)
  end
  f()
end
