-- expect: error: require takes a dotted name
-- Climbing out of the plugin folder with "../".
return function(record) require("../../../../../../etc/passwd") end
