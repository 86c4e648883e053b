import HTTPTypes
import Hummingbird
import NIOCore

/// HTML responses with the headers every page of an authorization flow needs: never cached, never framed
/// (clickjacking), no referrer leaking codes or state, and a restrictive content security policy.
public enum HTMLPage {
    /// The default policy: inline styles only, forms posting back to this origin or on to a redirect target.
    public static let defaultPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self' http: https:; "
        + "frame-ancestors 'none'; base-uri 'none'"

    /// An HTML response with the security headers.
    public static func response(
        _ html: String, status: HTTPResponse.Status = .ok, policy: String = defaultPolicy,
        headers extra: HTTPFields = [:]
    ) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .xFrameOptions: "DENY",
            .contentSecurityPolicy: policy, .referrerPolicy: "no-referrer", .xContentTypeOptions: "nosniff",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A redirect to `location`, uncached and without referrer: `302 Found` after a `GET`; `303 See Other` after a
    /// form `POST` (RFC 9700 §4.12: a 307 or 308 would make the browser post the form, credentials included, again).
    public static func redirect(to location: String, status: HTTPResponse.Status = .found) -> Response {
        Response(
            status: status, headers: [.location: location, .cacheControl: "no-store", .referrerPolicy: "no-referrer"])
    }
}

extension HTTPField.Name {
    /// `X-Frame-Options`.
    public static let xFrameOptions = Self("X-Frame-Options")!
    /// `Referrer-Policy`.
    public static let referrerPolicy = Self("Referrer-Policy")!
    /// `X-Content-Type-Options`.
    public static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
