-- expect: error: a thread cannot be written as JSON
-- The record passed in is changed in place to hold a coroutine.
return function(record) record.co = coroutine.create(print) end
