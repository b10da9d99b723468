-- expect: error: process must return nil (pass), false (drop) or a record table
-- process returns a string.
return function(record) return "replace me" end
