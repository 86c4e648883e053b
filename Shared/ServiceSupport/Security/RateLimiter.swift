import Foundation
import NIOCore
import Synchronization

/// A rate: how many requests may come at once (the bucket's size) and how fast the allowance comes back.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
    /// The burst: requests allowed at once from a full bucket.
    public var capacity: Double
    /// Requests per second the bucket refills with.
    public var refillPerSecond: Double

    /// `count` requests per `period` seconds, all of which may come at once.
    public init(_ count: Int, per period: TimeInterval) {
        self.capacity = Double(count)
        self.refillPerSecond = Double(count) / period
    }

    public var description: String { "\(Int(capacity)) per \(Int((capacity / refillPerSecond).rounded())) s" }

    /// Parses `30/min`, `5/s`, `1000/h` (also `second`, `minute`, `hour`); `off` is `nil`.
    public static func parse(_ text: String) -> RateLimit?? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "off" || text == "0" { return .some(nil) }
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, let count = Int(parts[0].trimmingCharacters(in: .whitespaces)), count > 0 else {
            return nil
        }
        let period: TimeInterval
        switch parts[1].trimmingCharacters(in: .whitespaces) {
        case "s", "sec", "second": period = 1
        case "m", "min", "minute": period = 60
        case "h", "hour": period = 3600
        default: return nil
        }
        return .some(RateLimit(count, per: period))
    }
}

/// Token buckets by key (a client address): each request takes one token; an empty bucket refuses, and says when the
/// next token comes. Memory is bounded: beyond ``maximumKeys`` the buckets that have refilled completely (which carry
/// no information) are dropped first, then the oldest.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: TimeInterval
    }

    /// The limit each key gets.
    public let limit: RateLimit
    /// How many keys are tracked at most.
    public let maximumKeys: Int
    private let buckets = Mutex<[String: Bucket]>([:])

    public init(limit: RateLimit, maximumKeys: Int = 100_000) {
        self.limit = limit
        self.maximumKeys = maximumKeys
    }

    /// Takes a token for `key` at `now` (seconds on any monotonic scale): `nil` when allowed, else the seconds until a
    /// token is available again.
    public func take(_ key: String, now: TimeInterval) -> TimeInterval? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: limit.capacity, updated: now)
            bucket.tokens = min(limit.capacity, bucket.tokens + max(0, now - bucket.updated) * limit.refillPerSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return (1 - bucket.tokens) / limit.refillPerSecond
            }
            bucket.tokens -= 1
            if buckets[key] == nil, buckets.count >= maximumKeys { evict(&buckets, now: now) }
            buckets[key] = bucket
            return nil
        }
    }

    private func evict(_ buckets: inout [String: Bucket], now: TimeInterval) {
        let refillTime = limit.capacity / limit.refillPerSecond
        buckets = buckets.filter { now - $0.value.updated < refillTime }
        if buckets.count >= maximumKeys {
            let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count / 2)
            for (key, _) in oldest { buckets.removeValue(forKey: key) }
        }
    }
}

/// Who a request comes from: the connection's peer, or, when that peer is a configured trusted proxy, the address the
/// proxies recorded in `X-Forwarded-For` (the rightmost entry that is not itself a trusted proxy: entries to its left
/// were written by the client and prove nothing).
public struct ClientAddressResolver: Sendable {
    /// The trusted proxies, as CIDR blocks.
    public let trustedProxies: [AddressBlock]

    public init(trustedProxies: [AddressBlock]) { self.trustedProxies = trustedProxies }

    public func clientAddress(peer: SocketAddress?, forwardedFor: [String]) -> String {
        guard let peerIP = peer?.ipAddress else { return "unknown" }
        guard isTrusted(peerIP) else { return peerIP }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let address = AddressBlock.parseAddress(hop) else { return peerIP }  // garbage: stop believing
            if !isTrusted(hop) { return AddressBlock.format(address) }
        }
        return peerIP
    }

    private func isTrusted(_ address: String) -> Bool {
        guard let bytes = AddressBlock.parseAddress(address) else { return false }
        return trustedProxies.contains { $0.contains(bytes) }
    }
}

/// An IPv4 or IPv6 CIDR block, such as `10.0.0.0/8` or `fd00::/8`; a plain address is a block of one.
public struct AddressBlock: Sendable, Equatable, CustomStringConvertible {
    let network: [UInt8]
    let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let network = Self.parseAddress(String(first)) else { return nil }
        let maximum = network.count * 8
        let length = parts.count == 2 ? Int(parts[1]) : maximum
        guard let length, (0...maximum).contains(length) else { return nil }
        self.network = network
        self.prefixLength = length
    }

    public var description: String { "\(Self.format(network))/\(prefixLength)" }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for index in 0..<address.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard address[index] & mask == network[index] & mask else { return false }
            remaining -= bits
        }
        return true
    }

    /// The bytes of an IPv4 or IPv6 address (brackets and an IPv6 zone allowed).
    static func parseAddress(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        if let v4 = try? SocketAddress(ipAddress: text, port: 0), case .v4(let address) = v4 {
            return withUnsafeBytes(of: address.address.sin_addr.s_addr) { Array($0) }
        }
        if let v6 = try? SocketAddress(ipAddress: text, port: 0), case .v6(let address) = v6 {
            return withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
        }
        return nil
    }

    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2).map {
            String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16)
        }
        .joined(separator: ":")
    }
}
