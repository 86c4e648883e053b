import Crypto
import Foundation
import JWTAuth

/// Session ids that carry their session: who opened it, over which transport, in which revision, and when, sealed
/// with AES-GCM under a key every gateway instance shares.
///
/// This is how a session works on any instance behind a load balancer without shared state: the instance that
/// receives a request for a session it has not seen opens the id, checks that the caller is the user who opened it,
/// and rebuilds the session from it. Nothing in the id is readable or forgeable without the key, and the id grants
/// nothing by itself: every request is authenticated by its bearer token first, and the id must belong to that user.
///
/// The key is `MCP_SESSION_KEY`, else derived from `GATEWAY_ENCRYPTION_KEY`; without either (external and access
/// modes), a random key per process, so sessions then belong to the instance that opened them.
struct SessionIDs: Sendable {
    static let version: UInt8 = 1

    private let key: SymmetricKey
    /// `MCP_SESSION_LIFETIME`: how long after `initialize` a session's id is accepted.
    let lifetime: TimeInterval

    init(secret: String?, lifetime: TimeInterval) {
        let material = secret.map { SymmetricKey(data: Data($0.utf8)) } ?? SymmetricKey(size: .bits256)
        self.key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: material, salt: Data("mcp-gateway".utf8), info: Data("mcp-session-id".utf8),
            outputByteCount: 32)
        self.lifetime = lifetime
    }

    /// What an id says about its session.
    struct Contents: Equatable {
        var revision: ProtocolRevision
        var transport: MCPSession.Transport
        var issuedAt: Date
    }

    /// A new id for a session `owner` opens now.
    func make(owner: String, revision: ProtocolRevision, transport: MCPSession.Transport, now: Date) -> String {
        var plain: [UInt8] = [Self.version, transport == .streamableHTTP ? 1 : 2]
        withUnsafeBytes(of: Int64(now.timeIntervalSince1970).bigEndian) { plain.append(contentsOf: $0) }
        plain.append(contentsOf: Self.ownerDigest(owner))
        plain.append(UInt8(revision.rawValue.utf8.count))
        plain.append(contentsOf: revision.rawValue.utf8)
        // Two sessions opened by one user in the same second differ.
        plain.append(contentsOf: SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) })
        // AES-GCM with a fresh random nonce, which `combined` carries. Sealing fails only for a key of the wrong size,
        // and this key is 256 bits by construction.
        let sealed = try! AES.GCM.seal(plain, using: key, authenticating: Data("mcp-session".utf8))
        return Base64URL.encode(sealed.combined!)
    }

    /// The contents of `id` if it is authentic, `owner`'s, and within its lifetime; `nil` otherwise.
    func open(_ id: String, owner: String, now: Date) -> Contents? {
        guard id.utf8.count <= 256, let combined = Base64URL.decode(id),
            let box = try? AES.GCM.SealedBox(combined: combined),
            let plain = try? Array(AES.GCM.open(box, using: key, authenticating: Data("mcp-session".utf8))),
            plain.count > 2 + 8 + 16 + 1, plain[0] == Self.version
        else { return nil }
        let transport: MCPSession.Transport
        switch plain[1] {
        case 1: transport = .streamableHTTP
        case 2: transport = .legacySSE
        default: return nil
        }
        let seconds = plain[2..<10].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        let issuedAt = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard Array(plain[10..<26]) == Self.ownerDigest(owner), issuedAt.addingTimeInterval(lifetime) > now,
            issuedAt <= now.addingTimeInterval(60)
        else { return nil }
        let length = Int(plain[26])
        guard plain.count >= 27 + length,
            let name = String(bytes: plain[27..<(27 + length)], encoding: .utf8),
            let revision = ProtocolRevision(rawValue: name)
        else { return nil }
        return Contents(revision: revision, transport: transport, issuedAt: issuedAt)
    }

    private static func ownerDigest(_ owner: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(owner.utf8)).prefix(16))
    }
}
