-- expect: error: module 'cjson' not found
-- cjson.so is installed on this machine: require must not look at C modules.
return function(record) record.x = require("cjson").encode({1}) end
