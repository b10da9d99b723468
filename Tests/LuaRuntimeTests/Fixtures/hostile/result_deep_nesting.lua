-- expect: error: nested deeper than 512 levels
-- A 100k-deep chain of tables built in a loop (the writer must not recurse 100k times).
return function(record)
  local t = { leaf = true }
  for i = 1, 1e5 do t = { next = t } end
  return t
end
