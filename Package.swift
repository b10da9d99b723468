// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "luapipe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "luapipe", targets: ["luapipe"]),
        .library(name: "LuaPipe", targets: ["LuaPipe"]),
        .library(name: "LuaPipeCore", targets: ["LuaPipeCore"]),
        .library(name: "LuaPipeTesting", targets: ["LuaPipeTesting"]),
        .library(name: "LuaPipeCLI", targets: ["LuaPipeCLI"]),
        .library(name: "LuaPipeHTTP", targets: ["LuaPipeHTTP"]),
        .library(name: "LuaPipeRedis", targets: ["LuaPipeRedis"]),
        .library(name: "LuaPipeMetrics", targets: ["LuaPipeMetrics"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        .target(name: "CLuaPipeJSON"),
        .target(name: "CLuaShim", dependencies: ["CLua", "CLuaPipeJSON"]),
        .target(
            name: "LuaPipeCore",
            dependencies: [
                "CLuaPipeJSON",
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "LuaRuntime", dependencies: ["CLua", "CLuaShim", "LuaPipeCore"]),
        .target(
            name: "LuaPipe",
            dependencies: [
                "LuaPipeCore", "LuaRuntime",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // HTTP for plugins (the `http` built-in, luapipe.http.request) in a target of its own,
        // so the library users import does not pull in SwiftNIO.
        .target(
            name: "LuaPipeHTTP",
            dependencies: ["LuaPipe", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // Redis streams as input and output (docs/reference.md, "Redis streams"): hiredis is
        // confined to this target, its blocking calls run on dedicated worker threads.
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "LuaPipeRedis",
            dependencies: ["CHiredis", "LuaPipeCore", .product(name: "Logging", package: "swift-log")]
        ),
        // `--metrics` (docs/reference.md, "Metrics"): a Prometheus registry fed from the run's
        // figures at scrape time, served by SwiftNIO, in a target of its own so that the core
        // knows nothing of either.
        .target(
            name: "LuaPipeMetrics",
            dependencies: [
                "LuaPipeCore",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "LuaPipeCLI",
            dependencies: [
                "LuaPipe", "LuaPipeHTTP", "LuaPipeRedis", "LuaPipeMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "luapipe", dependencies: ["LuaPipeCLI"]),
        .executableTarget(name: "luapipe-microbench", dependencies: ["LuaRuntime", "LuaPipeCore", "LuaPipe", "LuaPipeTesting"]),
        .executableTarget(name: "luapipe-io-bench", dependencies: ["LuaPipeCLI", "LuaPipe", "LuaPipeCore"]),
        .executableTarget(name: "luapipe-fuzz", dependencies: ["LuaRuntime", "LuaPipeCore"]),
        .target(
            name: "LuaPipeTesting",
            dependencies: ["LuaPipe", "LuaRuntime", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "LuaRuntimeTests", dependencies: ["LuaRuntime", "LuaPipeCore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LuaPipeCoreTests", dependencies: ["LuaPipeCore"]),
        .testTarget(name: "LuaPipeTests", dependencies: ["LuaPipe", "LuaPipeTesting"], resources: [.copy("Fixtures")]),
        .testTarget(name: "LuaPipeMetricsTests", dependencies: ["LuaPipeMetrics", "LuaPipeCore"]),
        .testTarget(name: "luapipeTests", dependencies: ["luapipe"], exclude: ["Fixtures"]),  // read by path
        .testTarget(name: "LuaPipeRedisTests", dependencies: ["LuaPipeRedis", "LuaPipe", "LuaPipeCore", "LuaPipeTesting"]),
    ]
)
