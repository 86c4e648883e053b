// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "mcp-todos-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "JWTAuth", targets: ["JWTAuth"]),
        .executable(name: "TodosAPI", targets: ["TodosAPI"]),
        .executable(name: "DevIdP", targets: ["DevIdP"]),
        .executable(name: "McpGateway", targets: ["McpGateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // OpenAPI documents (3.0, 3.1, 3.2) become MCP tools; the external-loading trait (remote `$ref`s) stays off.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0", traits: []),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(name: "JSON", path: "Shared/JSON", swiftSettings: swiftSettings),
        .target(
            name: "TodosAPIDocument", path: "Shared/TodosAPIDocument", resources: [.copy("Resources")],
            swiftSettings: swiftSettings),
        .target(
            name: "Resilience",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/Resilience",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "JWTAuth",
            dependencies: [
                "JSON",
                "Resilience",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Shared/JWTAuth",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceSupport",
            dependencies: [
                "JSON",
                "JWTAuth",
                "Resilience",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Shared/ServiceSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TodosAPI",
            dependencies: [
                "JSON",
                "JWTAuth",
                "Resilience",
                "ServiceSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the one statement read row by row (SQLiteTodoRepository.todos(of:)).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Services/TodosAPI",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DevIdP",
            dependencies: [
                "JSON",
                "JWTAuth",
                "ServiceSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Services/DevIdP",
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "McpGateway",
            dependencies: [
                "JSON",
                "JWTAuth",
                "Resilience",
                "ServiceSupport",
                "TodosAPIDocument",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // The error type PostgresNIO's pool throws as it is (see PostgresDatabaseClient).
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "OpenAPIKit30", package: "OpenAPIKit"),
                .product(name: "OpenAPIKitCompat", package: "OpenAPIKit"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Services/McpGateway",
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        // What only tests use: clocks that move when told, a seeded random source, a log capture. Never a dependency of what ships.
        .target(
            name: "TestSupport",
            dependencies: [
                "JWTAuth", "Resilience", "ServiceSupport", .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResilienceTests",
            dependencies: [
                "Resilience",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/ResilienceTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "JSONTests", dependencies: ["JSON"], path: "Tests/JSONTests", swiftSettings: swiftSettings),
        .testTarget(
            name: "JWTAuthTests",
            dependencies: [
                "JSON",
                "JWTAuth",
                "TestSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/JWTAuthTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServiceSupportTests",
            dependencies: ["ServiceSupport", "Resilience", .product(name: "HummingbirdTesting", package: "hummingbird")],
            path: "Tests/ServiceSupportTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TodosAPITests",
            dependencies: [
                "TodosAPI", "JSON", "JWTAuth", "ServiceSupport", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/TodosAPITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DevIdPTests",
            dependencies: [
                "DevIdP", "JSON", "JWTAuth", "ServiceSupport", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/DevIdPTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "McpGatewayTests",
            dependencies: [
                "McpGateway", "JSON", "JWTAuth", "ServiceSupport", "Resilience", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/McpGatewayTests",
            swiftSettings: swiftSettings
        ),
    ]
)
