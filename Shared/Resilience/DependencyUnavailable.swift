/// A service the process depends on (its database, an HTTP API, the identity provider) could not serve a request
/// just now: it did not answer within its deadline, refused the connection, or failed. Sending the request again later
/// may succeed, so HTTP renders it as `503 Service Unavailable` with `Retry-After`, never as a 500.
public struct DependencyUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    /// The dependency as a user may be told of it: `the database`, `the identity provider`, `TodosAPI`.
    public let dependency: String
    /// What failed and where, for the log (never for the user): `PostgreSQL transaction did not finish within 5 s`.
    public let detail: String
    /// When a retry is worth it, in seconds.
    public let retryAfter: Int

    /// Creates the error.
    public init(_ dependency: String, detail: String, retryAfter: Int = 2) {
        self.dependency = dependency
        self.detail = detail
        self.retryAfter = max(1, retryAfter)
    }

    public var description: String { "\(dependency) is unavailable: \(detail)" }
}
