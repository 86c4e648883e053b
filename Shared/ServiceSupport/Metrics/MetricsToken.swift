extension Settings {
    /// `METRICS_ENABLED` (default `true`): `false` records no metrics and serves no `/metrics`.
    public func metricsEnabled() throws(ConfigurationError) -> Bool {
        try boolean("METRICS_ENABLED", default: true)
    }

    /// `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>` (at least 16
    /// characters).
    public func metricsToken() throws(ConfigurationError) -> String? {
        guard let token = string("METRICS_TOKEN"), !token.isEmpty else { return nil }
        guard token.utf8.count >= 16 else {
            throw ConfigurationError(
                variable: "METRICS_TOKEN", problem: "must be at least 16 characters", example: "$(openssl rand -hex 16)"
            )
        }
        // It travels as a bearer token (RFC 6750 token68), and `/metrics` reads it back as one.
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/")
        let body = token.prefix { $0 != "=" }
        guard !body.isEmpty, body.allSatisfy(allowed.contains), token.dropFirst(body.count).allSatisfy({ $0 == "=" })
        else {
            throw ConfigurationError(
                variable: "METRICS_TOKEN", problem: "may hold only letters, digits and - . _ ~ + / (then = at the end)",
                example: "$(openssl rand -hex 16)")
        }
        return token
    }
}
