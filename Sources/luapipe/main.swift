import LuaPipeCLI

await LuaPipeCLI.main()
