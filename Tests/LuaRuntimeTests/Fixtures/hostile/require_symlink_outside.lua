-- expect: error: resolves outside the plugin's folder
-- lib/passwd.lua is a symlink to /etc/passwd: the real path is checked, not the name.
return function(record) require("lib.passwd") end
