import JWTAuth
import ServiceSupport

/// Redirects back to an MCP client's validated `redirect_uri` with the authorization response, always carrying
/// `state` and `iss` (RFC 9207, so that a client talking to several servers detects mix-up attacks).
enum ClientRedirect {
    static func success(_ request: ClientAuthorizationRequest, code: String, issuer: String) -> String {
        url(request, [("code", code)], issuer: issuer)
    }

    static func error(_ request: ClientAuthorizationRequest, _ error: String, _ description: String, issuer: String)
        -> String
    {
        url(request, [("error", error), ("error_description", OAuthErrorText.safe(description))], issuer: issuer)
    }

    private static func url(_ request: ClientAuthorizationRequest, _ parameters: [(String, String)], issuer: String)
        -> String
    {
        var all = parameters
        if let state = request.state { all.append(("state", state)) }
        all.append(("iss", issuer))
        return RedirectURI.appending(all, to: request.redirectURI)
    }
}
