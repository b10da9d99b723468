extension Pipeline {
    /// `run` for synchronous callers: blocks the calling thread until the run has ended.
    /// - Important: never call it from async code (it would block a cooperative thread).
    @available(*, noasync, message: "use run(source:sink:deadLetter:onInputError:stop:) from async code")
    public func runBlocking(source: any RecordSource, sink: any RecordSink, deadLetter: (any DeadLetterSink)? = nil,
                            onInputError: ErrorPolicy = .fail, stop: StopFlag = StopFlag()) throws -> Outcome {
        let box = BlockingBox<Outcome>()
        Task {
            do {
                box.set(.success(try await self.run(source: source, sink: sink, deadLetter: deadLetter,
                                                    onInputError: onInputError, stop: stop)))
            } catch {
                box.set(.failure(error))
            }
        }
        return try box.wait().get()
    }
}
