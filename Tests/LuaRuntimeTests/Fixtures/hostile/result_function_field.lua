-- expect: error: a function cannot be written as JSON
-- A returned record carrying a function.
return function(record) return { a = 1, cb = print } end
