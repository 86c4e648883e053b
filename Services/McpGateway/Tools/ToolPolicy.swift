import Foundation
import JSON
import JWTAuth
import ServiceSupport

/// Who may call which tool, beyond scopes: an optional JSON file (`TOOL_POLICY_FILE`, see docs/tool-policy.md) of
/// rules on the caller's identity: user ids, email addresses and domains, groups and roles (claims of the ID token,
/// the external access token, the Access assertion or the identity assertion), clients, machine clients.
///
/// ```json
/// {
///   "default": "allow",
///   "claims": { "groups": "groups", "roles": "https://example.com/roles" },
///   "tools": {
///     "delete-todo": { "allow": [{ "roles": ["admin"] }] },
///     "list-billing": { "allow": [{ "email_domains": ["example.com"] }], "deny": [{ "users": ["auth0|bob"] }] }
///   }
/// }
/// ```
///
/// A tool's `deny` rules are read first: any that matches refuses. Then, if the tool has `allow` rules, one must
/// match. A tool the file does not name follows `default` (`allow` unless it says `deny`). A rule matches when every
/// condition it lists holds (each a list of which one value must match); a rule with no condition matches everyone.
struct ToolPolicy: Sendable, Equatable {
    enum Default: String, Sendable { case allow, deny }

    /// One rule: conditions that must all hold.
    struct Rule: Sendable, Equatable {
        var users: Set<String>?
        var emails: Set<String>?
        var emailDomains: Set<String>?
        var groups: Set<String>?
        var roles: Set<String>?
        var clients: Set<String>?
        /// `true`: machine clients only; `false`: users only.
        var machineClients: Bool?
        /// Identity-assertion issuers whose users this rule is about. Without it, the email, domain, group and role
        /// conditions hold only for users of the sign-in provider (or the external server, or Access): another
        /// issuer's say on those is not the operator's directory.
        var issuers: Set<String>?

        func matches(_ caller: ToolCaller) -> Bool {
            if let issuers {
                guard let asserted = caller.assertedBy, issuers.contains(asserted) else { return false }
            } else if caller.assertedBy != nil, emails != nil || emailDomains != nil || groups != nil || roles != nil {
                return false
            }
            if let users, !users.contains(caller.subject) || caller.isMachine { return false }
            let email = caller.email?.lowercased()
            if let emails, !(email.map(emails.contains) ?? false) { return false }
            if let emailDomains {
                guard let email, let at = email.lastIndex(of: "@"),
                    emailDomains.contains(String(email[email.index(after: at)...]))
                else { return false }
            }
            if let groups, groups.isDisjoint(with: caller.groups) { return false }
            if let roles, roles.isDisjoint(with: caller.roles) { return false }
            if let clients, !(caller.clientID.map(clients.contains) ?? false) { return false }
            if let machineClients, machineClients != caller.isMachine { return false }
            return true
        }
    }

    struct ToolRules: Sendable, Equatable {
        var allow: [Rule]?
        var deny: [Rule]
    }

    var defaultDecision: Default = .allow
    var tools: [String: ToolRules] = [:]
    /// Which claims hold the caller's groups and roles.
    var claims = IdentityClaimNames()

    /// Whether `caller` may call `tool`.
    func allows(_ tool: String, for caller: ToolCaller) -> Bool {
        guard let rules = tools[tool] else { return defaultDecision == .allow }
        if rules.deny.contains(where: { $0.matches(caller) }) { return false }
        guard let allow = rules.allow else { return true }
        return allow.contains { $0.matches(caller) }
    }

    /// `TOOL_POLICY_FILE`, read and checked at start-up; `nil` when not set. Tool names must be among `toolNames`
    /// when given (the gateway checks them with ``check(toolNames:)`` once its tools are made).
    static func load(from settings: Settings, toolNames: Set<String>? = nil) throws(ConfigurationError) -> ToolPolicy? {
        guard let path = settings.string("TOOL_POLICY_FILE"), !path.isEmpty else { return nil }
        func problem(_ text: String) -> ConfigurationError {
            ConfigurationError(variable: "TOOL_POLICY_FILE", problem: text, example: "deploy/tool-policy.example.json")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw problem("names '\(path)', which cannot be read")
        }
        guard let document = try? JSONValue(parsing: Array(data)), case .object(let root) = document else {
            throw problem("'\(path)' is not a JSON object")
        }
        do { return try parse(root, toolNames: toolNames) } catch { throw problem("'\(path)': \(error.text)") }
    }

    /// Refuses a policy that names a tool the gateway does not have (a typo would otherwise leave a tool unguarded).
    func check(toolNames: Set<String>) throws(ConfigurationError) {
        if let unknown = tools.keys.sorted().first(where: { !toolNames.contains($0) }) {
            throw ConfigurationError(
                variable: "TOOL_POLICY_FILE",
                problem: "tools names '\(unknown)', which is not a tool of the gateway (\(toolNames.sorted()))",
                example: "deploy/tool-policy.example.json")
        }
    }

    struct ParseError: Error {
        let text: String
    }

    static func parse(_ root: [String: JSONValue], toolNames: Set<String>?) throws(ParseError) -> ToolPolicy {
        for key in root.keys where !["default", "claims", "tools"].contains(key) {
            throw ParseError(text: "unknown member '\(key)' (expected default, claims, tools)")
        }
        var policy = ToolPolicy()
        if let value = root["default"] {
            guard let name = value.stringValue, let decision = Default(rawValue: name) else {
                throw ParseError(text: "default must be \"allow\" or \"deny\"")
            }
            policy.defaultDecision = decision
        }
        if let value = root["claims"] {
            guard case .object(let claims) = value else { throw ParseError(text: "claims must be an object") }
            for (key, name) in claims {
                guard let name = name.stringValue, !name.isEmpty else {
                    throw ParseError(text: "claims.\(key) must name a claim")
                }
                switch key {
                case "groups": policy.claims.groups = name
                case "roles": policy.claims.roles = name
                default: throw ParseError(text: "claims may name groups and roles, not '\(key)'")
                }
            }
        }
        if let value = root["tools"] {
            guard case .object(let tools) = value else { throw ParseError(text: "tools must be an object") }
            for (tool, entry) in tools {
                if let toolNames, !toolNames.contains(tool) {
                    throw ParseError(
                        text: "tools names '\(tool)', which is not a tool of the gateway (\(toolNames.sorted()))")
                }
                guard case .object(let members) = entry else {
                    throw ParseError(text: "tools.\(tool) must be an object with allow and/or deny")
                }
                for key in members.keys where key != "allow" && key != "deny" {
                    throw ParseError(text: "tools.\(tool) has '\(key)' (expected allow, deny)")
                }
                policy.tools[tool] = ToolRules(
                    allow: try members["allow"].map { value throws(ParseError) in
                        try rules(value, at: "tools.\(tool).allow")
                    },
                    deny: try members["deny"].map { value throws(ParseError) in
                        try rules(value, at: "tools.\(tool).deny")
                    } ?? [])
            }
        }
        return policy
    }

    private static func rules(_ value: JSONValue, at path: String) throws(ParseError) -> [Rule] {
        guard case .array(let entries) = value else { throw ParseError(text: "\(path) must be a list of rules") }
        var rules: [Rule] = []
        for (index, entry) in entries.enumerated() {
            guard case .object(let conditions) = entry else {
                throw ParseError(text: "\(path)[\(index)] must be an object")
            }
            var rule = Rule()
            for (key, value) in conditions {
                if key == "machine_clients" {
                    guard let flag = value.boolValue else {
                        throw ParseError(text: "\(path)[\(index)].machine_clients must be true or false")
                    }
                    rule.machineClients = flag
                    continue
                }
                guard let list = value.stringArrayValue, !list.isEmpty else {
                    throw ParseError(text: "\(path)[\(index)].\(key) must be a non-empty list of strings")
                }
                switch key {
                case "users": rule.users = Set(list)
                case "emails": rule.emails = Set(list.map { $0.lowercased() })
                case "email_domains": rule.emailDomains = Set(list.map { $0.lowercased() })
                case "groups": rule.groups = Set(list)
                case "roles": rule.roles = Set(list)
                case "clients": rule.clients = Set(list)
                case "issuers": rule.issuers = Set(list)
                default:
                    throw ParseError(
                        text: "\(path)[\(index)] has '\(key)' (expected users, emails, email_domains, groups, roles,"
                            + " clients, issuers, machine_clients)")
                }
            }
            rules.append(rule)
        }
        return rules
    }
}
