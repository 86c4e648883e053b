import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// Which addresses the gateway may connect to when it fetches a URL a stranger named (a client's metadata document):
/// public unicast addresses only, unless private ones are allowed for development. This is the SSRF guard: without it,
/// anyone could make the gateway request its own admin ports, cloud metadata (169.254.169.254) or the internal network.
struct PublicAddressPolicy: Sendable {
    /// Loopback and private addresses are allowed too (development, tests).
    var allowPrivate: Bool

    /// Whether the gateway may connect to `address` (4 or 16 bytes).
    func allows(_ address: [UInt8]) -> Bool {
        allowPrivate ? !Self.isUnusable(address) : Self.isPublic(address)
    }

    /// The textual address as bytes, or `nil` when it is not an IPv4 or IPv6 literal (brackets allowed).
    static func parse(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(text), &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// The textual form of an address (4 or 16 bytes), IPv6 without brackets.
    static func format(_ address: [UInt8]) -> String {
        let family = address.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = address.withUnsafeBytes { bytes in
            inet_ntop(family, bytes.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard written != nil else { return "" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
    }

    /// Unspecified, multicast and broadcast addresses, which no HTTP server has.
    static func isUnusable(_ address: [UInt8]) -> Bool {
        if address.count == 4 {
            return address[0] == 0 || address[0] >= 224
        }
        if let v4 = embeddedIPv4(address) { return isUnusable(v4) }
        return address.allSatisfy { $0 == 0 } || address[0] == 0xFF
    }

    /// Public unicast: not loopback, private (RFC 1918, ULA), carrier-grade NAT, link-local, documentation,
    /// benchmarking, reserved, multicast or unspecified. IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
    static func isPublic(_ address: [UInt8]) -> Bool {
        if isUnusable(address) { return false }
        if address.count == 4 {
            let (a, b, c) = (address[0], address[1], address[2])
            switch (a, b) {
            case (10, _), (127, _), (169, 254), (192, 168): return false
            case (172, 16...31), (100, 64...127), (198, 18...19): return false
            case (192, 0) where c == 0 || c == 2: return false
            case (198, 51) where c == 100: return false
            case (203, 0) where c == 113: return false
            default: return true
            }
        }
        guard address.count == 16 else { return false }
        if let v4 = embeddedIPv4(address) { return isPublic(v4) }
        if address[0..<15].allSatisfy({ $0 == 0 }) && address[15] == 1 { return false }  // ::1
        if address[0] & 0xFE == 0xFC { return false }  // fc00::/7, unique local
        if address[0] == 0xFE && address[1] & 0xC0 == 0x80 { return false }  // fe80::/10, link-local
        if address[0] == 0xFE && address[1] & 0xC0 == 0xC0 { return false }  // fec0::/10, old site-local
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0x0D && address[3] == 0xB8 { return false }
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0 && address[3] == 0 { return false }  // Teredo
        if address[0] == 0x01 && address[1..<8].allSatisfy({ $0 == 0 }) { return false }  // 100::/64, discard
        // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): translates to whatever IPv4 the local network chooses.
        if address[0..<6].elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0x01]) { return false }
        // ::ffff:0:0:0/96, IPv4-translated (RFC 2765 SIIT): an IPv4 address in another form.
        if address[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]) { return false }
        return true
    }

    /// The IPv4 address inside `::ffff:a.b.c.d`, `::a.b.c.d`, `64:ff9b::a.b.c.d` (NAT64) and `2002:aabb:ccdd::` (6to4).
    private static func embeddedIPv4(_ address: [UInt8]) -> [UInt8]? {
        guard address.count == 16 else { return nil }
        let prefix = address[0..<12]
        if prefix.elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF])
            || (prefix.allSatisfy { $0 == 0 } && !address[12..<16].allSatisfy { $0 == 0 } && address[12] != 0)
            || prefix.elementsEqual([0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0])
        {
            return Array(address[12..<16])
        }
        if address[0] == 0x20 && address[1] == 0x02 { return Array(address[2..<6]) }
        return nil
    }
}

/// Resolves a host name to addresses. Injected so that tests can point names anywhere.
protocol HostResolving: Sendable {
    /// Every address of `host`, as 4 or 16 bytes.
    func addresses(of host: String, port: Int) async throws -> [[UInt8]]
}

/// `getaddrinfo`, off the cooperative thread pool.
struct SystemHostResolver: HostResolving {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `getaddrinfo` blocks and cannot be interrupted; it runs on a thread of its own, and a cancelled caller
    /// returns at once while the lookup finishes in the background.
    func addresses(of host: String, port: Int) async throws -> [[UInt8]] {
        let outcome = OneShot<[[UInt8]]>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                outcome.wait(continuation)
                Thread.detachNewThread {
                    outcome.resume(with: Result { try Self.lookUp(host, port: port) })
                }
            }
        } onCancel: {
            outcome.resume(with: .failure(CancellationError()))
        }
    }

    private static func lookUp(_ host: String, port: Int) throws -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw Failure(description: "the host name \(host) could not be resolved")
        }
        defer { freeaddrinfo(first) }
        var addresses: [[UInt8]] = []
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let info = current {
            if let address = info.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        var ip = $0.pointee.sin_addr
                        addresses.append(withUnsafeBytes(of: &ip) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        var ip = $0.pointee.sin6_addr
                        addresses.append(withUnsafeBytes(of: &ip) { Array($0) })
                    }
                default: break
                }
            }
            current = info.pointee.ai_next
        }
        return addresses
    }
}

/// A continuation resumed by whichever comes first, the result or a cancellation; later resumptions are ignored.
private final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case finished(Result<Value, any Error>)
        case resumed
    }

    private let state = Mutex(State.idle)

    func wait(_ continuation: CheckedContinuation<Value, any Error>) {
        let early: Result<Value, any Error>? = state.withLock { state in
            switch state {
            case .idle:
                state = .waiting(continuation)
                return nil
            case .finished(let result):
                state = .resumed
                return result
            case .waiting, .resumed:
                return nil
            }
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<Value, any Error>) {
        let waiting: CheckedContinuation<Value, any Error>? = state.withLock { state in
            switch state {
            case .idle:
                state = .finished(result)
                return nil
            case .waiting(let continuation):
                state = .resumed
                return continuation
            case .finished, .resumed:
                return nil
            }
        }
        waiting?.resume(with: result)
    }
}
