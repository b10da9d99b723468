-- expect: error: C stack overflow
-- 200k unary operators and 100k nested blocks: the parser's recursion limit for each shape.
return function(record)
  local f, err = load("return " .. string.rep("not -", 1e5) .. "1")
  assert(f == nil, "compiled?")
  local g, err2 = load(string.rep("do ", 1e5) .. string.rep("end ", 1e5))
  assert(g == nil, "compiled?")
  assert(tostring(err2):find("overflow"), err2)
  error(err, 0)
end
