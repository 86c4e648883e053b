import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTAuth
import ServiceSupport
import Testing

@testable import McpGateway

/// `TOOL_POLICY_FILE`: who may call which tool beyond scopes, by user, email domain, group, role or client; what
/// `tools/list` shows; how a denial reads; and every malformed file refused at start-up with the setting named.
@Suite("Tool policy")
struct ToolPolicyTests {
    typealias App = GatewayTestApp

    static let policy = #"""
        {
          "default": "deny",
          "claims": { "roles": "https://todos.example/roles" },
          "tools": {
            "whoami": { "allow": [{}] },
            "list-todos": { "allow": [{ "email_domains": ["example.com"] }], "deny": [{ "users": ["auth0|mallory"] }] },
            "delete-todo": { "allow": [{ "roles": ["admin"] }, { "groups": ["todo-admins"] }] },
            "list-billing": { "allow": [{ "emails": ["Carol@Example.com"], "clients": ["claude"] }] }
          }
        }
        """#

    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("policy-\(UUID().uuidString).json")
            .path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func caller(
        _ subject: String = "auth0|carol", email: String? = "carol@example.com", client: String? = "claude",
        groups: Set<String> = [], roles: Set<String> = [], machine: Bool = false, assertedBy: String? = nil
    ) -> ToolCaller {
        ToolCaller(
            subject: subject, email: email, clientID: client, isMachine: machine, groups: groups, roles: roles,
            assertedBy: assertedBy, scope: ["read:todos", "write:todos", "read:billing"], credentials: NoUserCredential())
    }

    @Test func anotherIssuersSayOnEmailsGroupsAndRolesCountsOnlyWhereARuleNamesIt() throws {
        let policy = try ToolPolicy.parse(
            try #require(
                try JSONValue(
                    parsing: Array(
                        #"""
                        {"default":"deny","tools":{
                          "list-todos":{"allow":[{"email_domains":["operator.example"]}]},
                          "delete-todo":{"allow":[{"roles":["admin"],"issuers":["https://partner.example"]}]}}}
                        """#.utf8)
                ).objectValue), toolNames: ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
        let partner = "https://partner.example"
        #expect(policy.allows("list-todos", for: caller(email: "ceo@operator.example")))
        #expect(!policy.allows("list-todos", for: caller(email: "ceo@operator.example", assertedBy: partner)))
        #expect(policy.allows("delete-todo", for: caller(roles: ["admin"], assertedBy: partner)))
        #expect(!policy.allows("delete-todo", for: caller(roles: ["admin"], assertedBy: "https://other.example")))
        #expect(!policy.allows("delete-todo", for: caller(roles: ["admin"])))
    }

    @Test func decisions() throws {
        let root = try #require(try JSONValue(parsing: Array(Self.policy.utf8)).objectValue)
        let policy = try ToolPolicy.parse(root, toolNames: ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
        #expect(policy.claims.roles == "https://todos.example/roles" && policy.claims.groups == "groups")
        // Not named: the default, deny.
        #expect(!policy.allows("add-todo", for: caller()))
        // An empty rule matches everyone, machine clients too.
        #expect(policy.allows("whoami", for: caller(machine: true)))
        // Email domains, case-insensitively; a deny rule wins over an allow rule.
        #expect(policy.allows("list-todos", for: caller(email: "Carol@EXAMPLE.com")))
        #expect(!policy.allows("list-todos", for: caller(email: "carol@example.org")))
        #expect(!policy.allows("list-todos", for: caller(email: nil)))
        #expect(!policy.allows("list-todos", for: caller("auth0|mallory", email: "mallory@example.com")))
        // Any of the rules; groups or roles.
        #expect(policy.allows("delete-todo", for: caller(roles: ["admin"])))
        #expect(policy.allows("delete-todo", for: caller(groups: ["todo-admins", "x"])))
        #expect(!policy.allows("delete-todo", for: caller(groups: ["admin"])))
        // Every condition of a rule: the email and the client.
        #expect(policy.allows("list-billing", for: caller()))
        #expect(!policy.allows("list-billing", for: caller(client: "cursor")))
        #expect(!policy.allows("list-billing", for: caller(client: nil)))
    }

    @Test(arguments: [
        (#"[]"#, "is not a JSON object"),
        (#"{"default":"maybe"}"#, "default must be"),
        (#"{"tools":{"rm-rf":{"allow":[{}]}}}"#, "not a tool of the gateway"),
        (#"{"tools":{"whoami":{"permit":[]}}}"#, "expected allow, deny"),
        (#"{"tools":{"whoami":{"allow":[{"teams":["a"]}]}}}"#, "has 'teams'"),
        (#"{"tools":{"whoami":{"allow":[{"users":[]}]}}}"#, "non-empty list of strings"),
        (#"{"tools":{"whoami":{"allow":{"users":["a"]}}}}"#, "must be a list of rules"),
        (#"{"claims":{"groups":""}}"#, "must name a claim"),
        (#"{"rules":{}}"#, "unknown member"),
        ("not json", "is not a JSON object"),
    ])
    func malformedFilesStopStartUpNamingTheSetting(text: String, problem: String) throws {
        let path = try Self.file(text)
        let error = #expect(throws: ConfigurationError.self) {
            _ = try ToolPolicy.load(
                from: Settings(environment: ["TOOL_POLICY_FILE": path]), toolNames: ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
        }
        #expect(error?.variable == "TOOL_POLICY_FILE")
        #expect(error?.problem.contains(problem) == true, "\(error?.problem ?? "")")
        let missing = #expect(throws: ConfigurationError.self) {
            _ = try ToolPolicy.load(
                from: Settings(environment: ["TOOL_POLICY_FILE": "/nonexistent/policy.json"]),
                toolNames: ["whoami", "list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
        }
        #expect(missing?.variable == "TOOL_POLICY_FILE")
    }

    @Test func theListShowsWhatTheCallerMayCallAndADenialIsAToolError() async throws {
        let path = try Self.file(Self.policy)
        let app = try await App(
            environment: AuthModeTests.external.merging(["TOOL_POLICY_FILE": path]) { _, new in new })
        try await app.run { client in
            let claims = AuthModeTests().claims(app, ["https://todos.example/roles": ["admin"]])
            let token = try app.provider.sign(claims)
            let session = try await client.initialize(token)
            let list = try await client.mcp(
                token, session: session, #"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#)
            let names = list.result?["tools"]?.arrayValue?.compactMap { $0.objectValue?["name"]?.stringValue }
            #expect(names == ["whoami", "list-todos", "list-billing", "delete-todo"])
            // add-todo is not listed, and calling it anyway is a tool error that says why, not a step-up.
            let denied = try await client.callTool(token, session: session, "add-todo", #"{"title":"x"}"#)
            #expect(denied.status == .ok)
            #expect(denied.result?["isError"] == true)
            let text = denied.result?["content"]?.arrayValue?.first?.objectValue?["text"]?.stringValue ?? ""
            #expect(text.contains("policy does not allow"))
            // Without the role, delete-todo is gone from the list.
            let plain = try app.provider.sign(AuthModeTests().claims(app))
            let plainSession = try await client.initialize(plain)
            let plainList = try await client.mcp(
                plain, session: plainSession, #"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#)
            let plainNames = plainList.result?["tools"]?.arrayValue?.compactMap {
                $0.objectValue?["name"]?.stringValue
            }
            #expect(plainNames == ["whoami", "list-todos", "list-billing"])
        }
    }
}
