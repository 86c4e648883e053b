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
    ],
    targets: [
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
                "JWTAuth",
                "Resilience",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Shared/ServiceSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TodosAPI",
            dependencies: [
                "JWTAuth",
                "Resilience",
                "ServiceSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Services/TodosAPI",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "DevIdP",
            dependencies: [
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
                "JWTAuth",
                "Resilience",
                "ServiceSupport",
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
            ],
            path: "Services/McpGateway",
            resources: [.copy("Resources")],
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
        .testTarget(
            name: "JWTAuthTests",
            dependencies: [
                "JWTAuth",
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
                "TodosAPI", "JWTAuth", "ServiceSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Tests/TodosAPITests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DevIdPTests",
            dependencies: [
                "DevIdP", "JWTAuth", "ServiceSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            path: "Tests/DevIdPTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "McpGatewayTests",
            dependencies: [
                "McpGateway", "JWTAuth", "ServiceSupport", "Resilience",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/McpGatewayTests",
            swiftSettings: swiftSettings
        ),
    ]
)
