import AsyncHTTPClient
import LuaPipe
import LuaPipeCore
import NIOCore
import NIOHTTP1

/// `HTTPService` over AsyncHTTPClient: one client per run, its pool sized to the concurrency
/// of the plugins that use it (AsyncHTTPClient's default of 8 connections per host would cap
/// 2 ms requests at 4,000 a second). Redirects are followed here, hop by hop, so each hop is
/// checked against the request's hosts before it connects.
public final class HTTPClientService: HTTPService {
    private let client: HTTPClient
    private let budgetSlot = Locked<HostBudget?>(nil)

    /// The run's host budget: response bodies are charged to it as they arrive, four times
    /// their size (`weight`), so many requests in flight cannot hold more than it, until the
    /// caller releases them.
    public var budget: HostBudget? {
        get { budgetSlot.withLock { $0 } }
        set { budgetSlot.withLock { $0 = newValue } }
    }

    /// - Parameter connectionsPerHost: at least the largest `concurrency` of the entries that
    ///   make requests.
    public init(connectionsPerHost: Int) {
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        config.connectionPool = .init(idleTimeout: .seconds(60),
                                      concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, connectionsPerHost))
        // A refused connection is an error now, not retried until the deadline: the callers
        // retry on their own terms (the http built-in's `retries`, a Lua plugin's pcall).
        config.connectionPool.retryConnectionEstablishment = false
        config.timeout.connect = .seconds(10)
        config.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Closes every connection. Call it once, when the run is over.
    public func shutdown() async {
        try? await client.shutdown()
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let deadline = ContinuousClock.now + request.timeout
        var url = request.url
        var method = request.method
        var body = request.body
        var hops = 0
        while true {
            if let why = request.refusal(url) { throw PipelineError(.plugin, "http: \(why)") }
            if let b = body, b.count > HTTPRequest.maxBody {
                throw PipelineError(.plugin, "http: the request body has \(b.count) bytes; the most is 16 MiB")
            }
            var r = HTTPClientRequest(url: url)
            r.method = HTTPMethod(rawValue: method)
            for (name, value) in request.headers { r.headers.add(name: name, value: value) }
            if let body { r.body = .bytes(ByteBuffer(bytes: body)) }
            let left = deadline - .now
            guard left > .zero else { throw PipelineError(.timeout, "http: \(method) \(url) timed out") }
            let response: HTTPClientResponse
            do {
                response = try await client.execute(r, timeout: .nanoseconds(Int64(left.nanoseconds)))
            } catch let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
                throw PipelineError(.timeout, "http: \(method) \(url) timed out after \(request.timeout.milliseconds) ms")
            } catch is CancellationError {
                throw PipelineError(.cancelled, "http: \(method) \(url) cancelled")
            } catch {
                throw PipelineError(.plugin, "http: \(method) \(url) failed: \(error)")
            }
            let status = Int(response.status.code)
            if (300...399).contains(status), status != 304, hops < request.redirects,
               let location = response.headers.first(name: "location") {
                hops += 1
                url = Self.resolve(location, against: url)
                if status == 303 || ((status == 301 || status == 302) && method == "POST") { method = "GET"; body = nil }
                continue
            }
            var body: [UInt8] = []
            var charged = 0
            let budget = self.budget
            do {
                // A stated length is reserved (and charged) at once: appending piece by piece
                // would double the array's capacity past what is counted.
                if let n = response.headers.first(name: "content-length").flatMap(Int.init), n > 0 {
                    if n > HTTPRequest.maxBody {
                        throw PipelineError(.plugin, "http: the response body of \(method) \(url) is larger than 16 MiB")
                    }
                    if let budget {
                        guard budget.tryCharge(n * Self.weight) else { throw Self.noRoom(method, url) }
                        charged = n * Self.weight
                    }
                    body.reserveCapacity(n)
                }
                for try await piece in response.body {
                    if body.count + piece.readableBytes > HTTPRequest.maxBody {
                        throw PipelineError(.plugin, "http: the response body of \(method) \(url) is larger than 16 MiB")
                    }
                    if let budget, (body.count + piece.readableBytes) * Self.weight > charged {
                        let more = (body.count + piece.readableBytes) * Self.weight - charged
                        guard budget.tryCharge(more) else { throw Self.noRoom(method, url) }
                        charged += more
                    }
                    body.append(contentsOf: piece.readableBytesView)
                }
            } catch let e as PipelineError {
                budget?.adjust(-charged)
                throw e
            } catch {
                budget?.adjust(-charged)
                throw PipelineError(.plugin, "http: reading the response of \(method) \(url) failed: \(error)")
            }
            let headers = response.headers.map { ($0.name.lowercased(), $0.value) }
            return HTTPResponse(status: status, headers: headers, body: body, charged: charged)
        }
    }

    /// What an answer counts against the host budget, per byte of its body: the bytes, the
    /// string and the parsed JSON a plugin gets, and their copy on the way into a Lua state
    /// (measured: 3.3 bytes of RSS per byte of body, SECURITY.md "Host memory").
    static let weight = 4

    static func noRoom(_ method: String, _ url: String) -> PipelineError {
        PipelineError(.memory, "http: not enough host memory for the response of \(method) \(url): "
                      + "the answers and records in flight fill the host budget (--host-memory-mb)")
    }

    public func release(_ response: HTTPResponse) {
        if response.charged > 0 { budget?.adjust(-response.charged) }
    }

    /// A Location header against the URL it answered: absolute, host-relative or relative.
    static func resolve(_ location: String, against base: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        let schemeEnd = base.range(of: "://").map(\.upperBound) ?? base.startIndex
        let pathStart = base[schemeEnd...].firstIndex(of: "/") ?? base.endIndex
        if location.hasPrefix("/") { return String(base[..<pathStart]) + location }
        let dirEnd = base[pathStart...].lastIndex(of: "/").map { base.index(after: $0) } ?? base.endIndex
        return String(base[..<dirEnd]) + location
    }
}
