import ArgumentParser
import Foundation
import JWTAuth
import Logging
import ServiceSupport

extension Admin {
    /// `admin purge`
    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "purge",
            abstract: "Delete what has expired now (every gateway also does it once a minute).")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let now = Date()
                let report = try await context.storage.maintenance.sweep(
                    now: now, unusedClientsBefore: now.addingTimeInterval(-context.settings.unusedClientLifetime))
                if output.json { return try printJSON(report) }
                say(
                    "Deleted \(report.total) row(s): \(report.grants) grant(s), \(report.accessTokens) access token(s), "
                        + "\(report.codes) code(s), \(report.pendingSignIns) pending sign-in(s), "
                        + "\(report.clients) unused client(s).")
            }
        }
    }

    /// `admin counts`
    struct Counts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "counts", abstract: "Count clients, active grants, users, access tokens and pending sign-ins.")
        @OptionGroup var output: OutputOptions

        func run() async throws {
            try await AdminContext.run { context in
                let counts = try await context.storage.maintenance.counts(now: Date())
                if output.json { return try printJSON(counts) }
                printTable(
                    ["CLIENTS", "ACTIVE GRANTS", "USERS", "ACCESS TOKENS", "PENDING SIGN-INS"],
                    [
                        [
                            "\(counts.clients)", "\(counts.activeGrants)", "\(counts.users)", "\(counts.accessTokens)",
                            "\(counts.pendingSignIns)",
                        ]
                    ])
            }
        }
    }

    /// `admin reseal`: every grant's upstream tokens under the current `GATEWAY_ENCRYPTION_KEY`.
    struct Reseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reseal",
            abstract: "Seal every upstream token again under the current GATEWAY_ENCRYPTION_KEY.",
            discussion: """
                Run it after rotating GATEWAY_ENCRYPTION_KEY (the old key moved to GATEWAY_ENCRYPTION_KEYS_OLD); when it \
                reports nothing left under an old key, that key can be removed. Safe while gateways are running. Exits \
                with 1 when some tokens could not be opened with any configured key (they are left as they are).
                """)

        func run() async throws {
            try await AdminContext.run { context in
                let configuration = context.configuration
                let cipher = TokenCipher(
                    secret: configuration.encryptionSecret, previousSecrets: configuration.previousEncryptionSecrets)
                let report = try await UpstreamTokenResealer(
                    grants: context.storage.grants, upstreamTokens: context.storage.upstreamTokens, cipher: cipher
                ).reseal(now: Date())
                say(
                    "Re-sealed \(report.resealed) grant(s) under key id \(cipher.current.id); \(report.current) already "
                        + "were; \(report.changedMeanwhile) refreshed meanwhile (already under it).")
                guard report.unreadable.isEmpty else {
                    for (keyID, count) in report.unreadable.sorted(by: { $0.key < $1.key }) {
                        say(
                            "\(count) grant(s) sealed under key id \(keyID), which no configured key opens: left "
                                + "unchanged.")
                    }
                    throw ExitCode(1)
                }
            }
        }
    }
}
