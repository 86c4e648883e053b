/// The `grant_type` values of `/token` whose name is longer than a word.
enum GrantType {
    /// RFC 7523's JWT-bearer grant, which carries enterprise identity assertions (ID-JAG) here.
    static let jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
}
