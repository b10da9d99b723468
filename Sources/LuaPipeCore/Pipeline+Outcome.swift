extension Pipeline {
    /// The outcome of a run: its figures, and the error that stopped it, if one did.
    public struct Outcome: Sendable {
        public var stats: RunStats
        public var error: PipelineError?
        /// The reader of the output went away (e.g. `| head`): the run ended quietly.
        public var outputClosed: Bool
        /// Set when a signal stopped the run.
        public var signal: Int32?
        /// Instances whose call was still running in C when the run had to end: they were
        /// abandoned (their teardown skipped), and the run's figures were taken as they stood.
        public var abandonedInstances = 0
    }
}
