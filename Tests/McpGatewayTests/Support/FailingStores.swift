import Foundation
import Resilience
import Synchronization

@testable import McpGateway

/// Operations of the stores a test can make fail, as a database that does not answer: each throws
/// ``DependencyUnavailable`` ("the database") while it is switched on.
final class DatabaseFaults: Sendable {
    enum Operation: Hashable, Sendable {
        case insertPendingSignIn, takePendingSignIn, markUsed, findCode, insertCode
    }

    private let failing = Mutex<Set<Operation>>([])
    /// How many calls were made to failing operations.
    private let failures = Mutex(0)

    init(_ operations: Set<Operation> = []) { failing.withLock { $0 = operations } }

    func fail(_ operations: Operation...) { failing.withLock { $0.formUnion(operations) } }
    func heal() { failing.withLock { $0 = [] } }
    var failedCalls: Int { failures.withLock { $0 } }

    func check(_ operation: Operation) throws {
        guard failing.withLock({ $0.contains(operation) }) else { return }
        failures.withLock { $0 += 1 }
        throw DependencyUnavailable("the database", detail: "test: \(operation) failed", retryAfter: 3)
    }

    /// Wraps the stores of `storage` whose operations this can fail.
    func wrap(_ storage: inout GatewayStorage) {
        storage.pendingSignIns = FailingPendingSignIns(base: storage.pendingSignIns, faults: self)
        storage.usedAssertions = FailingUsedAssertions(base: storage.usedAssertions, faults: self)
        storage.codes = FailingCodes(base: storage.codes, faults: self)
    }
}

private struct FailingPendingSignIns: PendingSignInStore {
    let base: any PendingSignInStore
    let faults: DatabaseFaults

    func insert(pending: PendingAuthorization) async throws {
        try faults.check(.insertPendingSignIn)
        try await base.insert(pending: pending)
    }

    func takePending(keyDigest: String, now: Date) async throws -> PendingAuthorization? {
        try faults.check(.takePendingSignIn)
        return try await base.takePending(keyDigest: keyDigest, now: now)
    }
}

private struct FailingUsedAssertions: UsedAssertionStore {
    let base: any UsedAssertionStore
    let faults: DatabaseFaults

    func markUsed(digest: String, expiresAt: Date, now: Date) async throws -> Bool {
        try faults.check(.markUsed)
        return try await base.markUsed(digest: digest, expiresAt: expiresAt, now: now)
    }
}

private struct FailingCodes: AuthorizationCodeStore {
    let base: any AuthorizationCodeStore
    let faults: DatabaseFaults

    func insert(grant: Grant, code: AuthorizationCodeRecord) async throws {
        try faults.check(.insertCode)
        try await base.insert(grant: grant, code: code)
    }

    func code(digest: String) async throws -> AuthorizationCodeRecord? {
        try faults.check(.findCode)
        return try await base.code(digest: digest)
    }

    func redeem(codeDigest: String, issuing tokens: IssuedTokens, now: Date) async throws -> CodeRedemption {
        try await base.redeem(codeDigest: codeDigest, issuing: tokens, now: now)
    }
}
