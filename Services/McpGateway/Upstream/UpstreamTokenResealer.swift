import Foundation
import ServiceSupport

/// Seals every active grant's upstream tokens under the current `GATEWAY_ENCRYPTION_KEY`, so that an old key can be
/// dropped from `GATEWAY_ENCRYPTION_KEYS_OLD` (`McpGateway admin reseal`). Safe while gateways run: a grant whose
/// tokens a refresh replaced in the meantime is left as the refresh wrote it (already under the current key).
struct UpstreamTokenResealer {
    struct Report: Equatable {
        /// Grants whose tokens were sealed again.
        var resealed = 0
        /// Grants already entirely under the current key.
        var current = 0
        /// Grants a refresh changed while this ran (now under the current key).
        var changedMeanwhile = 0
        /// Grants whose tokens no configured key opens, by the key id they are sealed under.
        var unreadable: [String: Int] = [:]
    }

    let grants: any GrantStore
    let upstreamTokens: any UpstreamTokenStore
    let cipher: TokenCipher

    func reseal(now: Date) async throws -> Report {
        let vault = UpstreamTokenVault(cipher: cipher)
        var report = Report()
        for grant in try await grants.activeGrants(.all, now: now) {
            // Grants no provider signed in (machine clients, identity assertions) hold nothing sealed.
            guard let upstream = grant.upstream else { continue }
            // A refresh holds this grant: its answer replaces these tokens (under the current key), and replacing
            // them now would make it look as if another refresh had won.
            if let lease = upstream.refreshLeaseUntil, lease > now {
                report.changedMeanwhile += 1
                continue
            }
            let tokens: UpstreamTokens?
            do { tokens = try vault.resealed(grant) } catch {
                report.unreadable[upstream.accessToken.keyID, default: 0] += 1
                continue
            }
            guard let tokens else {
                report.current += 1
                continue
            }
            if try await upstreamTokens.replaceUpstream(grantID: grant.id, expected: upstream, with: tokens) {
                report.resealed += 1
            } else {
                report.changedMeanwhile += 1
            }
        }
        return report
    }

    /// Refuses to start on a database holding tokens sealed under a key that is not configured: each such grant would
    /// fail at its next tool call. Naming the key id (never the key) tells the operator which secret to put back.
    static func checkKeys(upstreamTokens: any UpstreamTokenStore, cipher: TokenCipher, now: Date) async throws {
        let missing = try await upstreamTokens.sealingKeyIDs(now: now).subtracting(cipher.keyIDs)
        guard missing.isEmpty else {
            throw ConfigurationError(
                variable: "GATEWAY_ENCRYPTION_KEYS_OLD",
                problem: "lacks the key that sealed upstream tokens in the database (key id "
                    + "\(missing.sorted().joined(separator: ", "))): GATEWAY_ENCRYPTION_KEY was changed without keeping"
                    + " the old one; add it here (after `McpGateway admin reseal` it can be dropped)",
                example: "<the previous GATEWAY_ENCRYPTION_KEY>")
        }
    }
}
