-- expect: error: module 'socket.core' not found
-- A dotted name of a well-known C module (luasocket).
return function(record) require("socket.core").connect("127.0.0.1", 22) end
