import Foundation
import ServiceSupport

/// Which browser origins may call the gateway: `PUBLIC_URL`'s own origin, those listed in `CORS_ALLOWED_ORIGINS`,
/// and, when the gateway itself runs on a loopback address (development), any `http(s)://localhost` origin (MCP
/// Inspector on port 6274, a web app on 3000, …). Requests without `Origin` (native clients, curl) are not browser
/// requests and are not subject to it.
struct OriginPolicy: Sendable {
    let allowed: Set<String>
    let allowLoopback: Bool

    /// `allowed`: the origins of `CORS_ALLOWED_ORIGINS` and `PUBLIC_URL`; `address`: where the gateway runs.
    init(allowed: Set<String>, address: GatewayAddress) {
        self.allowed = Set(allowed.map { $0.lowercased() })
        self.allowLoopback = address.isLocalDevelopment
    }

    func allows(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        if allowed.contains(origin) { return true }
        guard allowLoopback, let components = URLComponents(string: origin), let host = components.host,
            components.scheme == "http" || components.scheme == "https", components.path.isEmpty,
            components.query == nil, components.user == nil
        else { return false }
        return RedirectURI.isLoopback(host: host)
    }
}
