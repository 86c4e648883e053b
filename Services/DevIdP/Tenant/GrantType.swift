/// The `grant_type` values whose name is longer than a word, as clients are registered for them.
enum GrantType {
    /// RFC 8693 token exchange: the gateway's downstream tokens, and the enterprise agent's identity assertions.
    static let tokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
}
