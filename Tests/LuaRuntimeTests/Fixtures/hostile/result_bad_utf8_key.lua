-- expect: error: key is not valid UTF-8
-- The string is a key this time.
return function(record) record["\xFF\xFE"] = 1 end
