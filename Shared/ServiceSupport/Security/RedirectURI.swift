import Foundation

/// Rules for OAuth redirect URIs (RFC 6749 §3.1.2, RFC 8252, OAuth 2.0 Security BCP §4.1).
public enum RedirectURI {
    /// Why a redirect URI cannot be registered: a struct over a private enum (as async-http-client's errors), so that
    /// a reason can be added without breaking a caller's `switch`; compare with the constants (`problem == .fragment`).
    public struct Problem: Error, Hashable, Sendable, CustomStringConvertible {
        private enum Reason: Hashable, Sendable {
            case notAURL, characters, fragment, scheme(String), insecureHTTP, credentials
        }

        private let reason: Reason

        /// Not an absolute URL with a host.
        public static let notAURL = Problem(reason: .notAURL)
        /// A space, a control character, a character outside ASCII or a broken percent-encoding.
        public static let characters = Problem(reason: .characters)
        /// A fragment (`#…`).
        public static let fragment = Problem(reason: .fragment)
        /// A scheme other than https (or http on loopback).
        public static func scheme(_ scheme: String) -> Problem { Problem(reason: .scheme(scheme)) }
        /// http on a host that is not loopback.
        public static let insecureHTTP = Problem(reason: .insecureHTTP)
        /// User information (`user:password@`).
        public static let credentials = Problem(reason: .credentials)

        public var description: String {
            switch reason {
            case .notAURL: "is not an absolute URL"
            case .characters:
                "is not an RFC 3986 URI: it holds a space, a control character, a character outside ASCII or a broken"
                    + " percent-encoding"
            case .fragment: "must not contain a fragment (#)"
            case .scheme(let scheme):
                "uses the scheme '\(scheme)'; only https, or http on a loopback address, is allowed"
            case .insecureHTTP: "uses http on a host that is not loopback (localhost, 127.0.0.1, [::1]); use https"
            case .credentials: "must not contain user information"
            }
        }
    }

    /// Checks that `uri` may be registered: an absolute https URL, or http on a loopback host, without fragment or
    /// user information. `javascript:`, `data:`, `file:` and every other scheme are refused.
    public static func validate(_ uri: String) throws(Problem) {
        guard isRFC3986(uri) else { throw .characters }
        guard uri.count <= 2000, let components = URLComponents(string: uri), let scheme = components.scheme,
            let host = components.host, !host.isEmpty
        else {
            if let scheme = URLComponents(string: uri)?.scheme?.lowercased(), scheme != "http", scheme != "https" {
                throw .scheme(scheme)
            }
            throw .notAURL
        }
        guard components.fragment == nil, !uri.contains("#") else { throw .fragment }
        guard components.user == nil, components.password == nil else { throw .credentials }
        switch scheme.lowercased() {
        case "https": return
        case "http": guard isLoopback(host: host) else { throw .insecureHTTP }
        default: throw .scheme(scheme.lowercased())
        }
    }

    /// Whether `uri` holds only what RFC 3986 §2 allows in a URI: unreserved and reserved characters, and `%` followed
    /// by two hex digits. Foundation's URL parser is lenient (it takes `\r\n`, a NUL, spaces), and a redirect URI is
    /// later written into a `Location` header.
    public static func isRFC3986(_ uri: String) -> Bool {
        let bytes = Array(uri.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, bytes[index + 1].isHexDigit, bytes[index + 2].isHexDigit else {
                    return false
                }
                index += 3
                continue
            }
            guard uriCharacters.contains(byte) else { return false }
            index += 1
        }
        return !bytes.isEmpty
    }

    private static let uriCharacters = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=".utf8)

    /// Whether `host` is a loopback host name or address.
    public static func isLoopback(host: String) -> Bool {
        let host = host.lowercased()
        return host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "[::1]"
    }

    /// Whether `requested` matches `registered`: exactly, or, for a loopback http URI, exactly except for the port
    /// (RFC 8252 §7.3: native apps listen on an ephemeral port).
    public static func matches(_ requested: String, registered: String) -> Bool {
        if requested == registered { return true }
        guard let lhs = URLComponents(string: requested), let rhs = URLComponents(string: registered),
            lhs.scheme?.lowercased() == "http", rhs.scheme?.lowercased() == "http",
            let host = lhs.host, isLoopback(host: host), lhs.host == rhs.host,
            lhs.fragment == nil
        else { return false }
        return lhs.percentEncodedPath == rhs.percentEncodedPath && lhs.percentEncodedQuery == rhs.percentEncodedQuery
            && lhs.user == nil
    }

    /// `uri` with `parameters` added to its query string (RFC 6749 §4.1.2: existing query components are kept).
    public static func appending(_ parameters: [(String, String)], to uri: String) -> String {
        guard var components = URLComponents(string: uri) else { return uri }
        var items = components.queryItems ?? []
        items += parameters.map { URLQueryItem(name: $0.0, value: $0.1) }
        components.percentEncodedQueryItems = items.map {
            URLQueryItem(name: formEncode($0.name), value: $0.value.map(formEncode))
        }
        return components.string ?? uri
    }

    /// Percent-encodes everything but the unreserved characters, so that `+`, `&` and `=` survive in query values.
    public static func formEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
