return require("lib.selfreq")
