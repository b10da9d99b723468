-- expect: error: not a list
-- process returns a list instead of a record.
return function(record) return { record, record } end
