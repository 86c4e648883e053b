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
        return token
    }
}
