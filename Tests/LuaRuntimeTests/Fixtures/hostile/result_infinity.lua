-- expect: error: an infinite number cannot be written as JSON
-- math.huge in the returned record.
return function(record) return { limit = -math.huge } end
