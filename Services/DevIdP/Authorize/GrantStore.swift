import Foundation
import JWTAuth
import ServiceSupport

/// The short-lived state of DevIdP, in memory: sign-in transactions, authorization codes and refresh tokens. Codes
/// and refresh tokens are stored by SHA-256 digest only. State is lost on restart, which is fine for development: the
/// gateway then asks the user to sign in again.
actor GrantStore {
    /// A sign-in in progress: the validated request, waiting for the login form.
    struct Transaction: Sendable {
        let request: AuthorizationRequest
        let expiresAt: Date
    }

    /// What an authorization code or refresh token grants.
    struct Grant: Sendable {
        let clientID: String
        let userID: String
        let scope: ScopeSet
        let audience: String
        let nonce: String?
        let authTime: Date
    }

    struct Code: Sendable {
        let grant: Grant
        let redirectURI: String
        let redirectURIWasSent: Bool
        let codeChallenge: String?
        let expiresAt: Date
        var redeemed = false
        /// Refresh-token families issued from this code, revoked if the code is replayed.
        var families: [String] = []
    }

    struct RefreshToken: Sendable {
        let grant: Grant
        let family: String
        let expiresAt: Date
        /// When the token was first used; `nil` while unused.
        var rotatedAt: Date?
    }

    private let clock: any WallClock
    private let random: any RandomSource
    private var transactions: [String: Transaction] = [:]
    private var codes: [String: Code] = [:]
    private var refreshTokens: [String: RefreshToken] = [:]
    private var revokedFamilies: Set<String> = []
    private var writesSinceSweep = 0

    init(clock: any WallClock, random: any RandomSource = SystemRandomSource()) {
        self.clock = clock
        self.random = random
    }

    // MARK: Sign-in transactions

    func begin(_ request: AuthorizationRequest) -> String {
        let id = random.token(byteCount: 24)
        transactions[id] = Transaction(
            request: request, expiresAt: clock.now.addingTimeInterval(DevIdPConfiguration.loginTransactionLifetime))
        sweepIfNeeded()
        return id
    }

    func transaction(_ id: String) -> AuthorizationRequest? {
        guard let transaction = transactions[id], transaction.expiresAt > clock.now else { return nil }
        return transaction.request
    }

    func finish(_ id: String) -> AuthorizationRequest? {
        guard let transaction = transactions.removeValue(forKey: id), transaction.expiresAt > clock.now else {
            return nil
        }
        return transaction.request
    }

    // MARK: Authorization codes

    func issueCode(for request: AuthorizationRequest, userID: String) -> String {
        let code = random.token(byteCount: 32)
        let grant = Grant(
            clientID: request.clientID, userID: userID, scope: request.scope, audience: request.audience,
            nonce: request.nonce, authTime: clock.now)
        codes[SecretDigest.hex(code)] = Code(
            grant: grant, redirectURI: request.redirectURI, redirectURIWasSent: request.redirectURIWasSent,
            codeChallenge: request.codeChallenge,
            expiresAt: clock.now.addingTimeInterval(DevIdPConfiguration.authorizationCodeLifetime))
        sweepIfNeeded()
        return code
    }

    enum CodeOutcome {
        case valid(Code)
        case unknownOrExpired
        case replayed
    }

    /// Redeems a code once. A second redemption revokes every refresh token the first one produced
    /// (RFC 6749 §4.1.2).
    func redeem(code: String) -> CodeOutcome {
        let key = SecretDigest.hex(code)
        guard var entry = codes[key], entry.expiresAt > clock.now else { return .unknownOrExpired }
        guard !entry.redeemed else {
            revokedFamilies.formUnion(entry.families)
            return .replayed
        }
        entry.redeemed = true
        codes[key] = entry
        return .valid(entry)
    }

    func recordFamily(_ family: String, forCode code: String) {
        codes[SecretDigest.hex(code)]?.families.append(family)
    }

    // MARK: Refresh tokens

    func issueRefreshToken(for grant: Grant, family: String? = nil, lifetime: TimeInterval) -> (
        token: String, family: String
    ) {
        let token = random.token(byteCount: 32)
        let family = family ?? random.token(byteCount: 16)
        refreshTokens[SecretDigest.hex(token)] = RefreshToken(
            grant: grant, family: family, expiresAt: clock.now.addingTimeInterval(lifetime))
        sweepIfNeeded()
        return (token, family)
    }

    enum RefreshOutcome {
        case valid(RefreshToken)
        case invalid
        case reused
    }

    /// Uses a refresh token once. Presenting a rotated token again revokes its whole family (reuse detection, as
    /// Auth0's refresh token rotation does), unless it comes within `reuseInterval` of its first use (Auth0's "Reuse
    /// Interval"): then it is honoured again.
    func useRefreshToken(_ token: String, clientID: String, reuseInterval: TimeInterval = 0) -> RefreshOutcome {
        let key = SecretDigest.hex(token)
        guard var entry = refreshTokens[key], entry.grant.clientID == clientID, entry.expiresAt > clock.now,
            !revokedFamilies.contains(entry.family)
        else { return .invalid }
        if let rotatedAt = entry.rotatedAt {
            guard clock.now.timeIntervalSince(rotatedAt) < reuseInterval else {
                revokedFamilies.insert(entry.family)
                return .reused
            }
            return .valid(entry)
        }
        entry.rotatedAt = clock.now
        refreshTokens[key] = entry
        return .valid(entry)
    }

    /// Revokes the family of a refresh token of `clientID` (RFC 7009); unknown tokens are ignored.
    func revoke(refreshToken token: String, clientID: String) {
        guard let entry = refreshTokens[SecretDigest.hex(token)], entry.grant.clientID == clientID else { return }
        revokedFamilies.insert(entry.family)
    }

    private func sweepIfNeeded() {
        writesSinceSweep += 1
        guard writesSinceSweep >= 100 else { return }
        writesSinceSweep = 0
        let now = clock.now
        transactions = transactions.filter { $0.value.expiresAt > now }
        codes = codes.filter { $0.value.expiresAt > now }
        refreshTokens = refreshTokens.filter { $0.value.expiresAt > now }
        let liveFamilies = Set(refreshTokens.values.map(\.family)).union(codes.values.flatMap(\.families))
        revokedFamilies.formIntersection(liveFamilies)
    }
}
