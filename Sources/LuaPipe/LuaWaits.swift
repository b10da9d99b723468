import LuaPipeCore
import LuaRuntime

#if canImport(Glibc)
import Glibc
#endif

/// What a Lua plugin's waits go to: `luapipe.sleep`, `luapipe.http.request` (with
/// `allow: [http]`, bound by `http_hosts`) and `ctx.call` (the host's registered functions).
/// Each wait ends by the call's deadline: the operation is cancelled then, and the record
/// fails with a timeout that no pcall can catch.
public struct LuaWaits: Sendable {
    public var allowHTTP: Bool
    public var httpHosts: Set<String>?
    public var http: (any HTTPService)?
    public var functions: [String: PluginRegistry.HostFunction]

    public init(allowHTTP: Bool = false, httpHosts: Set<String>? = nil, http: (any HTTPService)? = nil,
                functions: [String: PluginRegistry.HostFunction] = [:]) {
        self.allowHTTP = allowHTTP
        self.httpHosts = httpHosts
        self.http = http
        self.functions = functions
    }

    /// Performs the wait, on Swift concurrency (never on the state's thread). An HTTP answer
    /// holds host budget until `release` runs (once the answer is in the Lua state).
    func perform(_ request: WaitRequest, _ context: PluginContext) async -> (reply: WaitReply, release: (@Sendable () -> Void)?) {
        let held = Locked<HTTPResponse?>(nil)
        let start = ContinuousClock.now
        let reply: WaitReply
        if case .shared(let method) = request.kind {
            // A value or key list read from a store outside the process holds host budget
            // until it is in the state, as HTTP answers do.
            let charged = Locked(0)
            reply = await Self.shared(method, request, context, charged)
            context.tracer?.wait(Self.name(request), plugin: context.info.id, record: context.recordNumber, since: start)
            let n = charged.withLock { $0 }
            guard n > 0, let store = context.store as? any RemoteSharedStore else { return (reply, nil) }
            return (reply, { store.release(n) })
        }
        reply = await answer(request, context, held)
        context.tracer?.wait(Self.name(request), plugin: context.info.id, record: context.recordNumber, since: start)
        guard let response = held.withLock({ $0 }), let http else { return (reply, nil) }
        return (reply, { http.release(response) })
    }

    /// How a wait shows in the trace: "luapipe.sleep", "luapipe.http.request", "ctx.call NAME".
    static func name(_ request: WaitRequest) -> String {
        switch request.kind {
        case .sleep: "luapipe.sleep"
        case .http: "luapipe.http.request"
        case .call: "ctx.call " + (request.arguments.first?.stringValue ?? "")
        case .shared(let method): "ctx.shared:" + method.rawValue
        }
    }

    private func answer(_ request: WaitRequest, _ context: PluginContext, _ held: Locked<HTTPResponse?>) async -> WaitReply {
        let left = request.deadline > 0 ? request.deadline - LuaState.now() : Int64.max
        if left <= 0 { return .timeout }
        let limit = Duration.nanoseconds(left)
        do {
            switch request.kind {
            case .sleep:
                let seconds = request.arguments.first?.doubleValue ?? 0
                let want = Duration.nanoseconds(Int64(seconds * 1e9))
                if want >= limit {
                    try await Task.sleep(for: limit)
                    return .timeout
                }
                try await Task.sleep(for: want)
                return .value(nil)
            case .call:
                let name = request.arguments.first?.stringValue ?? ""
                guard let f = functions[name] else {
                    let known = functions.keys.sorted().joined(separator: ", ")
                    return .error("ctx.call: no host function '\(name)' (this program offers: \(known.isEmpty ? "none" : known))")
                }
                let args = request.arguments.count > 1 ? request.arguments[1] : .null
                return try await Self.race(limit) { .value(try await f(args, context)) } ?? .timeout
            case .shared:
                return .error("ctx.shared: not a wait of this kind")  // answered by `shared`
            case .http:
                guard allowHTTP else {
                    return .error("luapipe.http.request needs `allow: [http]` in the plugin's manifest entry")
                }
                guard let http else { return .error("luapipe.http.request: this program has no HTTP client") }
                var r = try httpRequest(request.arguments.first ?? .null)
                r.timeout = min(r.timeout, limit)
                // Raced against the deadline: the client's own timeout covers the response's
                // head, not a body sent a byte a second (which ran on for good, sixth blind
                // round); cancelling the request ends its body too.
                let (service, req) = (http, r)
                return try await Self.race(r.timeout) {
                    let response = try await service.send(req)
                    held.withLock { $0 = response }
                    return Self.reply(response)
                } ?? (r.timeout < limit ? .error("luapipe.http.request: \(r.method) \(r.url) timed out") : .timeout)
            }
        } catch is CancellationError {
            return .timeout
        } catch let e as PipelineError {
            return e.code == .timeout && Int64(LuaState.now()) >= request.deadline && request.deadline > 0
                ? .timeout : .error(e.message)
        } catch {
            return .error("\(error)")
        }
    }

    /// The same, blocking the calling thread (a state's worker) until it is done.
    @available(*, noasync, message: "blocks its thread: call it on a worker")
    func block(_ request: WaitRequest, _ context: PluginContext, cancel: Locked<(@Sendable () -> Void)?>? = nil) -> WaitReply {
        let box = BlockingBox<WaitReply>()
        let waits = self
        let task = Task {
            let (reply, release) = await waits.perform(request, context)
            release?()  // the caller copies the answer into the state at once
            box.set(.success(reply))
        }
        cancel?.withLock { $0 = { task.cancel() } }  // a halting run ends the wait (LuaPlugin.interrupt)
        defer { cancel?.withLock { $0 = nil } }
        return (try? box.wait().get()) ?? .timeout
    }

    /// Runs `body` against the time left; nil when the time ran out first (body cancelled).
    static func race(_ limit: Duration, _ body: @escaping @Sendable () async throws -> WaitReply) async throws -> WaitReply? {
        try await withThrowingTaskGroup(of: WaitReply?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            let first = try await group.next()
            return first ?? nil
        }
    }

    /// `{method=, url=, headers=, body=, json=, timeout=, redirects=}` as a request.
    func httpRequest(_ v: Value) throws -> HTTPRequest {
        guard let t = v.objectValue else { throw PipelineError(.plugin, "luapipe.http.request expects a table") }
        guard let url = t["url"]?.stringValue else { throw PipelineError(.plugin, "luapipe.http.request: `url` (a string) is required") }
        let method = (t["method"]?.stringValue ?? "GET").uppercased()
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
            throw PipelineError(.plugin, "luapipe.http.request: `method` must be a word such as GET or POST (got '\(method.prefix(40))')")
        }
        var r = HTTPRequest(method: method, url: url, hosts: httpHosts)
        if case .object(let h)? = t["headers"] {
            for (k, v) in h.fields {
                guard let s = v.stringValue else { throw PipelineError(.plugin, "luapipe.http.request: header '\(k)' must be a string") }
                r.headers.append((k, s))
            }
        }
        if let json = t["json"], !json.isNull {
            r.body = Array(JSONWriter.encode(json).utf8)
            if !r.headers.contains(where: { $0.0.lowercased() == "content-type" }) { r.headers.append(("content-type", "application/json")) }
        } else if let body = t["body"]?.stringValue {
            r.body = Array(body.utf8)
        }
        if let seconds = t["timeout"]?.doubleValue {
            guard seconds > 0 else { throw PipelineError(.plugin, "luapipe.http.request: `timeout` must be seconds > 0") }
            r.timeout = .nanoseconds(Int64(min(seconds, 86_400) * 1e9))
        }
        r.redirects = Int(t["redirects"]?.intValue ?? 0)
        if let why = r.refusal(url) { throw PipelineError(.plugin, "luapipe.http.request: \(why)") }
        return r
    }

    /// `{status=, headers=, body=, json=}`.
    static func reply(_ r: HTTPResponse) -> WaitReply {
        var headers = Record()
        for (k, v) in r.headers { headers[k] = .string(headers[k]?.stringValue.map { $0 + ", " + v } ?? v) }
        var out: Record = ["status": .int(Int64(r.status)), "headers": .object(headers),
                           "body": .string(String(decoding: r.body, as: UTF8.self))]
        if let json = r.json { out["json"] = json }
        return .value(.object(out))
    }
}
