import ServiceSupport

/// Client ID Metadata Documents (MCP 2025-11-25): clients whose `client_id` is the https URL of their metadata.
struct ClientMetadataDocumentSettings: Sendable {
    /// `CLIENT_ID_METADATA_DOCUMENTS`: whether such client ids are accepted (and advertised in the metadata).
    var enabled = true
    /// `CLIENT_ID_METADATA_ALLOW_PRIVATE`: for development only, documents may be fetched from loopback and private
    /// addresses, and over plain http from loopback.
    var allowPrivateAddresses = false

    static func load(from settings: Settings) throws(ConfigurationError) -> ClientMetadataDocumentSettings {
        let allowPrivate = try settings.boolean("CLIENT_ID_METADATA_ALLOW_PRIVATE", default: false)
        // Development only: on a gateway the internet can reach, it would let anyone make it fetch internal URLs.
        if allowPrivate, !PlainHTTPRule.isLoopback(settings.string("PUBLIC_URL", default: "http://localhost:8788")) {
            throw ConfigurationError(
                variable: "CLIENT_ID_METADATA_ALLOW_PRIVATE",
                problem: "is for development on this machine only, and PUBLIC_URL is not a loopback URL",
                example: "false")
        }
        return ClientMetadataDocumentSettings(
            enabled: try settings.boolean("CLIENT_ID_METADATA_DOCUMENTS", default: true),
            allowPrivateAddresses: allowPrivate)
    }
}
