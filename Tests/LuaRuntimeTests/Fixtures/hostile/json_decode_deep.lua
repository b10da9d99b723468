-- expect: error: nesting deeper than 512 levels
-- luapipe.json.decode of 100k nested arrays.
return function(record)
  luapipe.json.decode(string.rep("[", 1e5) .. string.rep("]", 1e5))
end
