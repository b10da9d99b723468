-- expect: error: luapipe.json.encode: field 'x[2]': a function cannot be written as JSON
-- luapipe.json.encode of a function deep in a list.
return function(record) luapipe.json.encode({ x = { 1, print } }) end
