#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `GET /metrics` (Prometheus text format) over HTTP/1.1 on one SwiftNIO event loop
/// thread of its own, for the length of a run.
///
/// Each scrape renders on that thread: `RunMetrics.render` reads the run's figures under
/// their locks and never waits for the pipeline or for Redis.
/// - Important: `stop()` must be called (it closes the listening socket and every
///   connection, and joins the thread); `start` leaves nothing behind when it throws.
public final class MetricsServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// Where the server listens (the port the system chose, for port 0).
    public let address: ListenAddress

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, address: ListenAddress) {
        self.group = group
        self.channel = channel
        self.address = address
    }

    /// The URL to scrape.
    public var url: String { "http://\(address)/metrics" }

    /// Resolves the host (on the server's thread, not the caller's), binds and listens.
    public static func start(_ address: ListenAddress, metrics: RunMetrics) async throws(MetricsError) -> MetricsServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do throws(MetricsError) {
            let resolved: SocketAddress
            do {
                let (host, port) = (address.host, address.port)
                resolved = try await group.next().submit { try SocketAddress.makeAddressResolvingHost(host, port: port) }.get()
            } catch {
                throw MetricsError(.listen, "--metrics \(address): cannot resolve host '\(address.host)'", cause: error)
            }
            let channel: any Channel
            do {
                channel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 64)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { child in
                        child.eventLoop.makeCompletedFuture {
                            try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                            try child.pipeline.syncOperations.addHandler(MetricsHandler(metrics))
                        }
                    }
                    .bind(to: resolved).get()
            } catch {
                var reason = "\(error)"
                if let e = error as? IOError {
                    reason = String(cString: strerror(e.errnoCode))
                    if e.errnoCode == EADDRINUSE { reason += " (another process listens there: choose another port, or 0 for any free one)" }
                }
                throw MetricsError(.listen, "--metrics \(address): cannot listen there: \(reason)", cause: error)
            }
            let bound = channel.localAddress
            let host = bound?.ipAddress ?? address.host
            return MetricsServer(group: group, channel: channel, address: ListenAddress(host: host, port: bound?.port ?? address.port))
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the listening socket and every connection, and ends the thread.
    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One connection: answers each request as its end arrives (bodies are ignored).
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: RunMetrics
    private var head: HTTPRequestHead?

    init(_ metrics: RunMetrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context, h)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let (status, type, body): (HTTPResponseStatus, String, [UInt8])
        var headers = HTTPHeaders()
        if path != "/metrics" {
            (status, type, body) = (.notFound, "text/plain; charset=utf-8", Array("not found: metrics are at /metrics\n".utf8))
        } else if request.method != .GET && request.method != .HEAD {
            (status, type, body) = (.methodNotAllowed, "text/plain; charset=utf-8", Array("method not allowed: use GET\n".utf8))
            headers.add(name: "Allow", value: "GET, HEAD")
        } else {
            (status, type, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        }
        let keepAlive = request.isKeepAlive
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}
