extension LuaState {
    public struct Options: Sendable {
        /// Bytes the state may allocate; 0: no limit.
        public var memoryLimit: Int
        /// The folder `require` may load `.lua` files from; nil: no `require`.
        public var root: String?
        public var allowIO: Bool
        public var allowOS: Bool
        /// VM instructions between two checks of deadline and interrupt flag.
        public var hookCount: Int
        /// ctx.shared's methods are calls that wait (`WaitRequest.Kind.shared`), for a store
        /// outside the process; false: the host's `SharedStore`, answered at once.
        public var sharedWaits: Bool

        public init(memoryLimit: Int = 256 << 20, root: String? = nil, allowIO: Bool = false,
                    allowOS: Bool = false, hookCount: Int = 1000, sharedWaits: Bool = false) {
            self.memoryLimit = memoryLimit
            self.root = root
            self.allowIO = allowIO
            self.allowOS = allowOS
            self.hookCount = hookCount
            self.sharedWaits = sharedWaits
        }
    }
}
