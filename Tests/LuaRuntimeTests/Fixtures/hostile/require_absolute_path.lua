-- expect: error: require takes a dotted name
-- An absolute path as the module name.
return function(record) require("/etc/passwd") end
