import Foundation

/// Settings fail closed: a URL that carries tokens, codes or keys must be https unless its host is this machine.
/// Plain http elsewhere would send them, and cookies without `Secure`, across a network; that is refused at start-up
/// with one line naming the setting, never accepted with a warning.
public enum PlainHTTPRule {
    /// Whether `url` names a loopback host (`localhost`, `127.0.0.1`, `[::1]`).
    public static func isLoopback(_ url: String) -> Bool {
        guard let host = URLComponents(string: url)?.host else { return false }
        return RedirectURI.isLoopback(host: host)
    }

    /// Throws for `variable` when `url` is plain http to a host that is not loopback.
    public static func check(_ url: String, variable: String, example: String) throws(ConfigurationError) {
        guard URLComponents(string: url)?.scheme?.lowercased() == "http", !isLoopback(url) else { return }
        throw ConfigurationError(
            variable: variable,
            problem: "is plain http to a host that is not this machine ('\(url)'): use https (http is accepted for"
                + " localhost, 127.0.0.1 and [::1] only)",
            example: example)
    }
}
