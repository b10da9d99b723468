print("luapipe: the command line arrives with the CLI issue")
