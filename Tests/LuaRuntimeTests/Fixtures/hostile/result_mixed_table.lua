-- expect: error: a table mixes list items and named fields
-- A table that is half list, half object.
return function(record) return { items = { 1, 2, 3, name = "x" } } end
