/// Who owns todos: a subject, in the namespace of the issuer that names it.
///
/// A `sub` is unique only within its issuer (OpenID Connect Core §2): TodosAPI trusts several issuers (the provider,
/// the MCP gateway, Cloudflare Access), and the same string from two of them may be two people. So the owner is the
/// pair. The MCP gateway's tokens name the issuer their subject belongs to (`sub_id`, RFC 9493's `iss_sub` format):
/// a user the gateway signed in through the provider owns the same todos whether a call carries the provider's token
/// or one the gateway minted, and a user of another authorization server owns other todos.
struct TodoOwner: Hashable, Sendable {
    /// The issuer whose namespace ``subject`` is in.
    var issuer: String
    /// The `sub`, shown as the todo's `owner`.
    var subject: String
}
