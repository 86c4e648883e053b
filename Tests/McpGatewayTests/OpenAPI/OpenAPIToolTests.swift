import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import JWTAuth
import Logging
import ServiceSupport
import NIOCore
import NIOHTTP1
import Resilience
import Synchronization
import Testing
import TodosAPIDocument

@testable import McpGateway

/// A credential source that hands out one token and records what it was asked for.
final class RecordingCredentials: DownstreamCredentialSource {
    let asked = Mutex<[(scope: ScopeSet, audience: String?)]>([])
    func credential(scope: ScopeSet, audience: String?) async throws(APIFailure) -> DownstreamCredential {
        asked.withLock { $0.append((scope, audience)) }
        return .bearer("downstream-token")
    }
}

/// Makes the tools of `yaml` for an API at `baseURL`. The work runs on NIO's blocking pool, as the gateway runs it:
/// reading a document takes a while in a debug build (a hostile one longer), and the cooperative pool's two threads
/// serve every other test meanwhile; a test holding them makes the deadlines of others pass.
func generatedTools(
    _ yaml: String, baseURL: String = "http://127.0.0.1:9", selection: OpenAPIToolSelection = .init(),
    audience: String? = nil
) async throws -> OpenAPIToolGenerator.Output {
    let origin = try #require(KeepAliveHTTPClient.Origin(baseURL))
    return try await Offload.run {
        let document = try OpenAPIDocument.parse(Array(yaml.utf8), source: "test.yaml")
        let api = API(title: document.title, audience: audience, http: try KeepAliveHTTPClient(origin: origin))
        return try OpenAPIToolGenerator(document: document, api: api, selection: selection).tools()
    }
}

/// Why the gateway refuses `yaml`, or `nil` when it makes tools of it.
func documentProblem(_ yaml: String, selection: OpenAPIToolSelection = .init()) async -> String? {
    do {
        _ = try await generatedTools(yaml, selection: selection)
        return nil
    } catch let problem as OpenAPIDocument.Problem {
        return problem.description
    } catch {
        return "\(error)"
    }
}

/// An API of another shape than TodosAPI: scopes of its own, a recursive schema, query arrays, a header parameter.
let notesDocument = """
    openapi: 3.1.0
    info: { title: Notes API, version: "1" }
    security: [{ oauth: [notes:read] }]
    components:
      securitySchemes:
        oauth:
          type: oauth2
          flows:
            clientCredentials:
              tokenUrl: https://idp.example/token
              scopes: { "notes:read": Read notes, "notes:write": Write notes, admin: Everything }
      schemas:
        Note:
          type: object
          required: [id, text]
          properties:
            id: { type: string }
            text: { type: string, maxLength: 100 }
            children: { type: array, items: { $ref: "#/components/schemas/Note" } }
    paths:
      /notes/{folder}/items:
        parameters:
          - { name: folder, in: path, required: true, schema: { type: string } }
        get:
          operationId: list_notes
          summary: List notes
          parameters:
            - { name: tag, in: query, schema: { type: array, items: { type: string }, maxItems: 3 } }
            - { name: X-Trace-Note, in: header, schema: { type: string } }
          responses:
            "200":
              description: ok
              content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/Note" } } } }
        post:
          operationId: add note!
          security: [{ oauth: [notes:write] }, { oauth: [admin] }]
          requestBody:
            required: true
            content: { application/json: { schema: { $ref: "#/components/schemas/Note" } } }
          responses:
            "201":
              description: created
              content: { application/problem+json: { schema: { $ref: "#/components/schemas/Note" } } }
      /health:
        get:
          security: []
          responses: { "200": { description: ok } }
      /notes/{id}:
        delete:
          operationId: delete_note
          security: [{ oauth: [notes:write] }]
          parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
          responses: { "204": { description: deleted } }
    """

@Suite("Tools from OpenAPI documents")
struct OpenAPIToolTests {
    @Test func todosAPIsDocumentMakesTheTodosTools() async throws {
        let output = try await generatedTools(String(decoding: try #require(TodosAPIDocument.bytes()), as: UTF8.self))
        #expect(output.tools.map(\.name) == ["list-todos", "list-billing", "add-todo", "update-todo", "delete-todo"])
        let byName = Dictionary(uniqueKeysWithValues: output.tools.map { ($0.name, $0) })
        #expect(byName["list-todos"]?.scopes == ScopeRequirement("read:todos"))
        #expect(byName["list-billing"]?.scopes == ScopeRequirement("read:billing"))
        #expect(byName["delete-todo"]?.scopes == ScopeRequirement("write:todos"))
        let update = try #require(byName["update-todo"]?.definition.objectValue)
        #expect(update["title"] == "Update a todo")
        #expect(update["annotations"]?.objectValue?["idempotentHint"] == true)
        #expect(update["annotations"]?.objectValue?["destructiveHint"] == true)
        let input = try #require(update["inputSchema"]?.objectValue)
        #expect(input["additionalProperties"] == false)
        #expect(input["required"] == ["id"])
        #expect(Set(input["properties"]?.objectValue?.keys.map { $0 } ?? []) == ["id", "title", "description", "due", "completed"])
        let list = try #require(byName["list-todos"]?.definition.objectValue)
        #expect(list["annotations"]?.objectValue?["readOnlyHint"] == true)
        #expect(list["outputSchema"]?.objectValue?["properties"]?.objectValue?["todos"]?.objectValue?["type"] == "array")
        // What is left out, and why.
        #expect(output.skipped.contains { $0.hasPrefix("GET /api/health") })
        #expect(output.skipped.contains { $0.hasPrefix("GET /api/me") })
    }

    @Test func anotherAPIsOperationsBecomeToolsWithTheirScopes() async throws {
        let output = try await generatedTools(notesDocument)
        #expect(output.tools.map(\.name) == ["list_notes", "add_note", "delete_note"])
        let add = output.tools[1]
        #expect(add.scopes == ScopeRequirement(alternatives: [["notes:write"], ["admin"]]))
        #expect(add.scopes.chosen(for: ["admin", "notes:read"]) == ["admin"])
        #expect(add.scopes.missing(from: ["notes:read"]) == ["notes:write"])
        // The recursive schema is kept once, under $defs, and referred to.
        let input = try #require(add.definition.objectValue?["inputSchema"]?.objectValue)
        #expect(input["$defs"]?.objectValue?["Note"] != nil)
        #expect(input["properties"]?.objectValue?["children"]?.objectValue?["items"] == ["$ref": "#/$defs/Note"])
        // An array answer is wrapped: structured content is always an object.
        let output0 = try #require(output.tools[0].definition.objectValue?["outputSchema"]?.objectValue)
        #expect(output0["required"] == ["result"])
        // A 204 echoes the path parameters.
        let delete = try #require(output.tools[2].definition.objectValue)
        #expect(delete["outputSchema"]?.objectValue?["required"] == ["deleted", "id"])
        #expect(delete["annotations"]?.objectValue?["destructiveHint"] == true)
    }

    @Test func operationsOpenToAnyoneAreToolsOnlyWhenTheOperatorSaysSo() async throws {
        #expect(try await generatedTools(notesDocument).tools.contains { $0.name == "get_health" } == false)
        var selection = OpenAPIToolSelection()
        selection.allowUnauthenticated = true
        let tools = try await generatedTools(notesDocument, selection: selection).tools
        #expect(tools.first { $0.name == "get_health" }?.scopes == ScopeRequirement.none)
    }

    @Test func includeExcludeAndRename() async throws {
        var selection = OpenAPIToolSelection()
        selection.include = [.init(path: "/notes/*")]
        selection.exclude = [.init(methods: ["DELETE"])]
        selection.rename = ["list_notes": "notes.list"]
        #expect(try await generatedTools(notesDocument, selection: selection).tools.map(\.name) == ["notes.list", "add_note"])
        selection = OpenAPIToolSelection()
        selection.include = [.init(operationIDs: ["delete_note"])]
        #expect(try await generatedTools(notesDocument, selection: selection).tools.map(\.name) == ["delete_note"])
    }

    static let brokenDocuments: [(String, String)] = [
        ("openapi: 4.0.0\ninfo: { title: x, version: '1' }\npaths: {}", "reads versions 3.0, 3.1 and 3.2"),
        ("swagger: '2.0'\ninfo: { title: x, version: '1' }\npaths: {}", "Swagger 2.0"),
        ("just text", "not an OpenAPI document"),
        ("openapi: 3.1.0\ninfo: { title: x }\npaths: {}", "not a valid OpenAPI 3.1 document"),
        (
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            paths:
              /a: { get: { operationId: same, security: [{}], responses: { "200": { description: ok } } } }
              /b: { get: { operationId: same, security: [{}], responses: { "200": { description: ok } } } }
            """, "names both"
        ),
        (
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            components: { parameters: { P: { $ref: "#/components/parameters/P" } } }
            paths:
              /a: { get: { parameters: [{ $ref: "#/components/parameters/P" }], responses: { "200": { description: ok } } } }
            """, "reference cycle"
        ),
        (
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            paths:
              /a: { get: { x-mcp-name: "bad name", responses: { "200": { description: ok } } } }
            """, "is not valid"
        ),
        (
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            paths:
              /a/{id}: { get: { responses: { "200": { description: ok } } } }
            """, "has no path parameter"
        ),
        (
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            paths:
              /a: { get: { parameters: [{ $ref: "other.yaml#/P" }], responses: { "200": { description: ok } } } }
            """, "points outside the document"
        ),
    ]

    /// A document whose one operation, open to anyone, takes a body of schema `S0`, with `schemas` (YAML lines of
    /// `components.schemas`); made into tools with allow_unauthenticated.
    static func problemOfBody(schemas: [String]) async -> String? {
        let document = """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            paths:
              /a: { post: { security: [{}], requestBody: { content: { application/json: { schema: { $ref: "#/components/schemas/S0" } } } }, responses: { "204": { description: ok } } } }
            components:
              schemas:

            """ + schemas.map { "    \($0)\n" }.joined()
        var selection = OpenAPIToolSelection()
        selection.allowUnauthenticated = true
        return await documentProblem(document, selection: selection)
    }

    /// A document with nine levels of YAML aliases, ten of the level below each (`a9` stands for a billion values),
    /// and `rest` after them.
    static func aliasBomb(_ rest: String = "") -> String {
        var text = "openapi: 3.1.0\ninfo: { title: x, version: '1' }\npaths: {}\nx-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            text += "x-a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        return text + rest
    }

    @Test(arguments: brokenDocuments)
    func brokenDocumentsAreRefusedWithTheReason(_ yaml: String, _ reason: String) async {
        let problem = await documentProblem(yaml)
        #expect(problem?.contains(reason) == true, "\(problem ?? "accepted")")
    }

    @Test func documentsThatExpandWithoutBoundAreRefused() async {
        // YAML aliases: nine levels of ten make a billion values out of a few lines.
        #expect(await documentProblem(Self.aliasBomb())?.contains("more than") == true)
        // $refs that fan out: each schema uses the next one twice, 2^30 once inlined.
        let fanOut = (0..<30).map { level in
            "S\(level): { type: object, properties: { a: { $ref: '#/components/schemas/S\(level + 1)' }, b: { $ref: '#/components/schemas/S\(level + 1)' } } }"
        }
        #expect(await Self.problemOfBody(schemas: fanOut + ["S30: { type: string }"])?.contains("more than 50000 values") == true)
        // Too large to read at all.
        let huge = Array(repeating: UInt8(ascii: " "), count: OpenAPIDocument.maximumBytes + 1)
        #expect(throws: OpenAPIDocument.Problem.self) { try OpenAPIDocument.parse(huge, source: "huge") }
    }

    @Test func openAPI30SchemasBecomeJSONSchema() async throws {
        let output = try await generatedTools(
            """
            openapi: 3.0.3
            info: { title: Old API, version: '1' }
            components:
              securitySchemes: { bearer: { type: http, scheme: bearer } }
            security: [{ bearer: [] }]
            paths:
              /items:
                post:
                  operationId: add
                  requestBody:
                    required: true
                    content:
                      application/json:
                        schema:
                          type: object
                          required: [count]
                          properties:
                            count: { type: integer, minimum: 0, exclusiveMinimum: true }
                            note: { type: string, nullable: true, example: hi }
                            id: { type: string, readOnly: true }
                  responses: { "204": { description: ok } }
            """)
        let properties = try #require(
            output.tools.first?.definition.objectValue?["inputSchema"]?.objectValue?["properties"]?.objectValue)
        #expect(properties["count"] == ["type": "integer", "exclusiveMinimum": 0])
        #expect(properties["note"] == ["type": ["string", "null"], "examples": ["hi"]])
        #expect(properties["id"] == nil, "readOnly members are not arguments")
    }

    // MARK: Arguments

    func tool(_ name: String, _ output: OpenAPIToolGenerator.Output) throws -> OpenAPITool {
        try #require(output.tools.first { $0.name == name })
    }

    static let hostileArguments: [(String, String, String)] = [
        ("delete-todo", #"{"id":"../billing"}"#, "'id' must be a UUID"),
        ("delete-todo", #"{"id":7}"#, "'id' must be a string, not an integer"),
        ("add-todo", #"{}"#, "'title' is required"),
        ("add-todo", #"{"title":""}"#, "'title' must not be empty"),
        ("add-todo", #"{"title":"x","owner":"mallory"}"#, "'owner' is not an argument this tool takes"),
        ("add-todo", #"{"title":"x","due":"2026-02-30"}"#, "'due' must be a date"),
        ("update-todo", #"{"id":"00000000-0000-4000-8000-000000000000"}"#, "must have at least 1"),
        ("list-todos", #"{"completed":"yes"}"#, "'completed' must be true or false, not a string"),
    ]

    @Test(arguments: hostileArguments)
    func badArgumentsAreRefusedBeforeAnythingIsSent(_ name: String, _ arguments: String, _ message: String) async throws {
        let output = try await generatedTools(String(decoding: try #require(TodosAPIDocument.bytes()), as: UTF8.self))
        let values = try #require(try JSONValue(parsing: Array(arguments.utf8)).objectValue)
        let credentials = RecordingCredentials()
        let caller = ToolCaller(subject: "alice", scope: ["read:todos", "write:todos"], credentials: credentials)
        do {
            _ = try await tool(name, output).call(ToolArguments(values), caller: caller)
            Issue.record("\(name) accepted \(arguments)")
        } catch let error as ToolError {
            #expect(error.message.contains(message), "\(error.message)")
        }
        #expect(credentials.asked.withLock { $0.isEmpty })
    }

    @Test func deepAndHugeArgumentsAreRefused() async throws {
        let output = try await generatedTools(notesDocument)
        let add = try tool("add_note", output)
        var deep: JSONValue = ["id": "x", "text": "y"]
        for _ in 0..<100 { deep = ["id": "x", "text": "y", "children": [deep]] }
        #expect(throws: SchemaValidator.Failure.self) { try add.input.validate(deep) }
        let list = try tool("list_notes", output)
        #expect(throws: SchemaValidator.Failure.self) {
            try list.input.validate(["folder": "a", "tag": .array(Array(repeating: "t", count: 100_000))])
        }
    }

    @Test func everyParameterIsEncodedSoNoArgumentReachesAnotherRoute() async throws {
        let list = try tool("list_notes", try await generatedTools(notesDocument))
        for (folder, path) in [
            ("%2F", "/notes/%252F/items"), ("%2E%2E", "/notes/%252E%252E/items"),
            ("x?y=1#z", "/notes/x%3Fy%3D1%23z/items"), ("é", "/notes/%C3%A9/items"), ("...", "/notes/.../items"),
        ] {
            #expect(try list.operation.request(["folder": .string(folder)]).path == path)
        }
        for dots in ["..", ".", "", "../admin", "a/b", "..\\admin", "/"] {
            #expect(throws: ToolError.self) { try list.operation.request(["folder": .string(dots)]) }
        }
        let request = try list.operation.request(["folder": "f", "tag": ["a&b", "c=d", "e f"]])
        #expect(request.path == "/notes/f/items?tag=a%26b&tag=c%3Dd&tag=e%20f")
        for injection in ["a\r\nX-Evil: 1", "a\nb", "a\u{0}b", "a\u{7F}"] {
            #expect(throws: ToolError.self) {
                try list.operation.request(["folder": "f", "X-Trace-Note": .string(injection)])
            }
        }
        #expect(try list.operation.request(["folder": "f", "X-Trace-Note": "fine"]).headers["X-Trace-Note"] == ["fine"])
    }

    // MARK: Answers

    func answer(
        _ tool: OpenAPITool, status: HTTPResponseStatus, type: String? = "application/json", _ body: String,
        arguments: [String: JSONValue] = [:]
    ) -> ToolResult {
        var headers = HTTPHeaders()
        if let type { headers.add(name: "Content-Type", value: type) }
        return tool.answer(.init(status: status, headers: headers, body: ByteBuffer(string: body)), arguments: arguments)
    }

    @Test func answersBecomeResultsOrErrorsThatSayWhatHappened() async throws {
        let output = try await generatedTools(notesDocument)
        let list = try tool("list_notes", output)
        let ok = answer(list, status: .ok, #"[{"id":"1","text":"hi"}]"#)
        #expect(!ok.isError && ok.structured == ["result": [["id": "1", "text": "hi"]]])
        let wrongShape = answer(list, status: .ok, #"[{"id":1}]"#)
        #expect(wrongShape.isError && wrongShape.text.contains("unexpected body"))
        let problem = answer(
            list, status: .unprocessableEntity, type: "application/problem+json",
            #"{"type":"about:blank","title":"Invalid","detail":"tag is unknown"}"#)
        #expect(problem.isError && problem.text == "The Notes API refused the request: tag is unknown.")
        let fastAPI = answer(
            list, status: .unprocessableEntity,
            #"{"detail":[{"loc":["query","tag",0],"msg":"String should have at most 5 characters","type":"x"}]}"#)
        #expect(fastAPI.text.contains("'tag.0' String should have at most 5 characters"))
        #expect(answer(list, status: .badGateway, "oops").text == "The Notes API failed (HTTP 502). Try again later.")
        #expect(answer(list, status: .ok, type: "text/html", "<html>").text.contains("text/html, not JSON"))
        for type in ["Application/JSON; charset=utf-8", " application/json ", "application/vnd.api+JSON"] {
            #expect(OpenAPITool.isJSON(type), "\(type)")
        }
        for type in ["application/jsonx", "text/json", "+json", "application/json-seq"] {
            #expect(!OpenAPITool.isJSON(type), "\(type)")
        }
        #expect(answer(list, status: .forbidden, #"{"error_description":"no"}"#).text.contains("may not do this: no"))
        let big = "[" + Array(repeating: #"{"id":"1","text":"x"}"#, count: 20_000).joined(separator: ",") + "]"
        let cut = answer(list, status: .ok, big)
        #expect(cut.isError && cut.text.contains("more than the 256 KiB") && cut.text.count < 300_000)
        let delete = try tool("delete_note", output)
        let deleted = answer(delete, status: .noContent, type: nil, "", arguments: ["id": "n1"])
        #expect(!deleted.isError && deleted.structured == ["deleted": true, "id": "n1"])
    }

    /// The API's checked text is what the client reads, unless an object in it names a member twice: another reader
    /// could take the member the gateway did not check, so the client reads the checked value written again.
    @Test func theAPIsTextIsPassedOnUnlessItNamesAMemberTwice() async throws {
        let output = try await generatedTools(notesDocument)
        let list = try tool("list_notes", output)
        let spaced = answer(list, status: .ok, " \n[ {\"text\": \"hi\", \"id\": \"1\"} ]\r\n")
        #expect(spaced.text == #"{"result":[ {"text": "hi", "id": "1"} ]}"#)
        #expect(spaced.structured == ["result": [["id": "1", "text": "hi"]]])
        let repeated = answer(list, status: .ok, #"[{"id":"1","text":"hidden","text":"shown"}]"#)
        #expect(repeated.text == #"{"result":[{"id":"1","text":"shown"}]}"#)
        let deeper = answer(list, status: .ok, #"[{"id":"1","text":"a"},{"id":"2","id":"3","text":"b"}]"#)
        #expect(deeper.text == #"{"result":[{"id":"1","text":"a"},{"id":"3","text":"b"}]}"#)
        // Either way, the text content and the structured content of the encoded result are the same value.
        for result in [spaced, repeated, deeper] {
            let encoded = try JSONValue(parsing: result.encoded())
            let content = encoded.objectValue?["content"]?.arrayValue?.first?.objectValue?["text"]?.stringValue
            #expect(encoded.objectValue?["structuredContent"] == result.structured)
            #expect(try JSONValue(parsing: Array((content ?? "").utf8)) == result.structured)
        }
        let add = try tool("add_note", output)
        let created = answer(add, status: .created, type: "application/problem+json", "{\"id\":\"9\",\"text\":\"t\"}\n")
        #expect(created.text == #"{"id":"9","text":"t"}"#)
    }

    @Test func aCallSendsOnlyToTheBaseURLWithATokenForExactlyItsScopes() async throws {
        let seen = Mutex<[(String, String?)]>([])
        let router = Router()
        router.post("base/notes/{folder}/items") { request, _ -> Response in
            seen.withLock { $0.append((request.uri.description, request.headers[.authorization])) }
            return Response(
                status: .created, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"id":"n1","text":"hello"}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let output = try await generatedTools(
                notesDocument, baseURL: "http://127.0.0.1:\(try #require(client.port))/base", audience: "urn:notes")
            let credentials = RecordingCredentials()
            let caller = ToolCaller(subject: "alice", scope: ["notes:read", "admin"], credentials: credentials)
            let add = try tool("add_note", output)
            let result = try await add.call(ToolArguments(["folder": "a b?", "id": "n1", "text": "hello"]), caller: caller)
            #expect(!result.isError && result.structured == ["id": "n1", "text": "hello"])
            #expect(seen.withLock { $0.map(\.0) } == ["/base/notes/a%20b%3F/items"])
            #expect(seen.withLock { $0.map(\.1) } == ["Bearer downstream-token"])
            let asked = credentials.asked.withLock { $0 }
            #expect(asked.count == 1 && asked[0].scope == ["admin"] && asked[0].audience == "urn:notes")
        }
    }
    // MARK: What a hostile review found

    @Test func aDateTimeOfWideCharactersIsRefusedNotACrash() async throws {
        let validator = SchemaValidator(root: ["type": "string", "format": "date-time"])
        #expect(throws: SchemaValidator.Failure.self) { try validator.validate("😀😀😀😀😀") }
        #expect(throws: SchemaValidator.Failure.self) { try validator.validate("2026-12-07T10:00:00Zé") }
        try validator.validate("2026-12-07T10:00:00Z")
    }

    @Test func aSchemaThatBranchesIntoItselfCostsABoundedAmount() async throws {
        var selection = OpenAPIToolSelection()
        selection.allowUnauthenticated = true
        let output = try await generatedTools(
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            components:
              schemas:
                T: { oneOf: [{ $ref: "#/components/schemas/T" }, { $ref: "#/components/schemas/T" }] }
            paths:
              /t: { post: { requestBody: { required: true, content: { application/json: { schema: { $ref: "#/components/schemas/T" } } } }, responses: { "204": { description: ok } } } }
            """, selection: selection)
        let tool = try #require(output.tools.first)
        let refused = try await Offload.run { () -> Bool in
            do { try tool.input.validate(["body": "x"]) } catch let error as SchemaValidator.Failure { return error.problem == "is too complex to check" }
            return false
        }
        #expect(refused)
    }

    @Test func longChainsOfReferencesAndAliasKeysAreRefused() async {
        let chain = (0..<100).map { "S\($0): { $ref: '#/components/schemas/S\($0 + 1)' }" } + ["S100: { type: string }"]
        #expect(await Self.problemOfBody(schemas: chain)?.contains("more than 64 levels") == true)
        for key in ["? *a9\n: 1\n", "*a9 : 1\n", "x-b: { *a9 : 1 }\n"] {
            #expect(await documentProblem(Self.aliasBomb(key))?.contains("alias as a mapping key") == true, "\(key)")
        }
        // Text that merely looks like one is read as text.
        #expect(!OpenAPIDocument.hasAliasAsKey(Array("description: \"see *note: x\"\ntitle: don't *x: y\n".utf8)))
    }

    @Test func duplicateKeysInJSONAreRefusedNotResolvedQuietly() async {
        let json = #"{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{},"security":[{"a":["w"]}],"security":[]}"#
        #expect(await documentProblem(json) != nil)
    }

    @Test func pathsThatCouldLeaveTheirRouteAreRefusedAtStartUp() {
        for path in ["/a/{b", "/a/b}", "a/b", "/x\r\nX-Evil: 1", "/../admin", "/a/./b", "/a?b=1", "/a#b", "/a b"] {
            #expect(throws: OpenAPIDocument.Problem.self, "\(path)") { try OpenAPIToolGenerator.checkPath(path) }
        }
        for path in ["/a/{b}", "/a/{b}.json", "/a/b:c", "/", "/a/%7B"] {
            #expect(throws: Never.self, "\(path)") { try OpenAPIToolGenerator.checkPath(path) }
        }
    }

    @Test func twoValuesCannotMakeADotSegmentTogether() async throws {
        // `.` is refused on its own; with the template's own dot after it, it would make `..`.
        let operation = APIOperation(
            method: .GET, path: "/files/{a}.", parameters: [.init(name: "a", argument: "a", location: .path)],
            body: .none)
        #expect(throws: ToolError.self) { try operation.request(["a": "."]) }
        #expect(try operation.request(["a": "a"]).path == "/files/a.")
    }

    @Test func aBearerSchemesRolesAreScopesAndTheSmallestAlternativeIsChosen() async throws {
        let output = try await generatedTools(
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            components:
              securitySchemes:
                bearer: { type: http, scheme: bearer }
                oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: "https://i.example/t", scopes: { a: A, b: B } } } }
            paths:
              /r: { get: { security: [{ bearer: [admin] }], responses: { "204": { description: ok } } } }
              /s: { get: { security: [{ oauth: [a, b] }, { oauth: [b] }], responses: { "204": { description: ok } } } }
            """)
        #expect(output.tools[0].scopes == ScopeRequirement("admin"))
        #expect(output.tools[1].scopes.chosen(for: ["a", "b"]) == ["b"])
    }

    @Test func anOptionalBodyLeftOutIsNotSent() async throws {
        let output = try await generatedTools(
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            components: { securitySchemes: { bearer: { type: http, scheme: bearer } } }
            security: [{ bearer: [] }]
            paths:
              /n/{id}:
                patch:
                  parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
                  requestBody:
                    content:
                      application/vnd.api+json: { schema: { type: object, required: [text], properties: { text: { type: string } } } }
                  responses: { "200": { description: ok } }
            """)
        let tool = try #require(output.tools.first)
        let bare = try tool.operation.request(["id": "1"])
        #expect(bare.body == nil)
        let full = try tool.operation.request(["id": "1", "text": "t"])
        #expect(full.headers["Content-Type"] == ["application/vnd.api+json"])
        // A 200 without a documented body: no output schema, and what comes back is passed on.
        #expect(tool.definition.objectValue?["outputSchema"] == nil)
        let passed = answer(tool, status: .ok, #"{"anything":1}"#)
        #expect(!passed.isError && passed.structured == ["anything": 1])
    }

    @Test func argumentNamesAreWhatClientsAcceptAndParametersKeepTheirOwn() async throws {
        let output = try await generatedTools(
            """
            openapi: 3.1.0
            info: { title: x, version: '1' }
            components: { securitySchemes: { bearer: { type: http, scheme: bearer } } }
            security: [{ bearer: [] }]
            paths:
              /q:
                get:
                  parameters:
                    - { name: "filter[status]", in: query, schema: { type: string } }
                    - { name: "$top", in: query, schema: { type: integer } }
                    - { name: ids, in: query, style: pipeDelimited, explode: false, schema: { type: array, items: { type: integer } } }
                  responses: { "204": { description: ok } }
            """)
        let tool = try #require(output.tools.first)
        let names = Set(tool.definition.objectValue?["inputSchema"]?.objectValue?["properties"]?.objectValue?.keys.map { $0 } ?? [])
        #expect(names == ["filter_status_", "_top", "ids"])
        let request = try tool.operation.request(["filter_status_": "open", "_top": 5.0, "ids": [1, 2]])
        #expect(request.path == "/q?filter%5Bstatus%5D=open&%24top=5&ids=1%7C2")
    }

    @Test func anAPIAtAnotherOriginNeedsItsOwnAudience() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("apis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(notesDocument.utf8).write(to: directory.appendingPathComponent("notes.yaml"))
        let file = directory.appendingPathComponent("apis.yaml")
        try Data("apis:\n  - { openapi: notes.yaml, base_url: 'https://notes.example' }\n".utf8).write(to: file)
        let context = APICatalog.Context(
            defaultBaseURL: "http://localhost:8789", timeout: .seconds(1), connectTimeout: .seconds(1),
            fetcher: HTTPDocumentFetcher(), logger: Logger(label: "test"))
        await #expect(throws: ConfigurationError.self) { try await APICatalog.load(file.path, context: context) }
        try Data("apis:\n  - { openapi: notes.yaml, base_url: 'https://notes.example', audience: 'urn:notes' }\n".utf8)
            .write(to: file)
        let catalog = try await APICatalog.load(file.path, context: context)
        #expect(catalog.apis.map(\.audience) == ["urn:notes"])
        #expect(catalog.tools.map(\.name) == ["list_notes", "add_note", "delete_note"])
    }
}

@Suite("The scopes the gateway offers come from the tools")
struct GatewayScopesFromDocumentsTests {
    @Test func theTodosScopesAreTodosAPIsInItsOrderAndWords() async throws {
        let app = try await GatewayTestApp()
        try await app.run { client in
            let metadata = try await client.execute(uri: "/.well-known/oauth-authorization-server", method: .get)
            let document = try JSONValue(parsing: Array(metadata.body.readableBytesView))
            #expect(
                document.objectValue?["scopes_supported"]
                    == ["offline_access", "read:billing", "read:todos", "write:todos"])
        }
        let scopes = GatewayScopes([("read:todos", "See your todos"), ("write:todos", nil)])
        #expect(scopes.describe(["offline_access", "write:todos", "read:todos"]).map(\.description) == [
            "See your todos", "write:todos", "Stay connected when you are away (refresh tokens)",
        ])
    }

    @Test func anotherAPIsScopesAreOfferedAndGrantedScopesMustBeAmongThem() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("scopes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("notes.yaml").path
        try Data(notesDocument.utf8).write(to: URL(fileURLWithPath: path))
        let app = try await GatewayTestApp(environment: ["API_OPENAPI": path])
        try await app.run { client in
            let metadata = try await client.execute(uri: "/.well-known/oauth-protected-resource/mcp", method: .get)
            let document = try JSONValue(parsing: Array(metadata.body.readableBytesView))
            #expect(document.objectValue?["scopes_supported"] == ["admin", "notes:read", "notes:write", "offline_access"])
        }
        // Scopes every user would get must be scopes of the tools.
        let refused = try await GatewayTestApp(environment: ["API_OPENAPI": path, "GRANTED_SCOPES": "read:todos"])
        await #expect(throws: ConfigurationError.self) { try await refused.run { _ in } }
    }

    @Test func theServerSaysWhichAPIsItsToolsCallUnlessTheyAreTodosAPIs() throws {
        let origin = try #require(KeepAliveHTTPClient.Origin("http://127.0.0.1:9"))
        func catalog(_ titles: [String]) throws -> APICatalog {
            let apis = try titles.map { API(title: $0, audience: nil, http: try KeepAliveHTTPClient(origin: origin)) }
            return APICatalog(apis: apis, tools: [], scopes: GatewayScopes([]))
        }
        #expect(try catalog(["Todos API"]).serverInstructions == nil)
        #expect(
            try catalog(["Notes API", "Todos API"]).serverInstructions
                == "Tools that call Notes API, Todos API for the signed-in user.")
        #expect(try catalog([]).serverInstructions == "Tools that call no API for the signed-in user.")
    }
}

@Suite("Hand-written tools beside generated ones")
struct HandWrittenToolTests {
    /// A tool written in Swift, named as a generated one.
    struct Replacement: GatewayTool {
        let name: String
        let scopes = ScopeRequirement("notes:read")
        var definition: JSONValue { ["name": .string(name), "description": "Written by hand"] }
        func call(_ arguments: ToolArguments, caller: ToolCaller) async throws(ToolError) -> ToolResult {
            .success(["by": "hand"])
        }
    }

    @Test func aHandWrittenToolReplacesTheGeneratedOneInItsPlace() async throws {
        let generated = try await generatedTools(notesDocument).tools
        let box = ToolBox.combining(
            handWritten: [WhoAmITool(), Replacement(name: "add_note")], generated: generated)
        #expect(box.tools.map(\.name) == ["whoami", "list_notes", "add_note", "delete_note"])
        #expect(box.tool(named: "add_note")?.definition.objectValue?["description"] == "Written by hand")
        let caller = ToolCaller(subject: "alice", scope: ["notes:read"], credentials: RecordingCredentials())
        let result = try await box.call("add_note", arguments: ToolArguments(), caller: caller)
        #expect(result.structured == ["by": "hand"])
    }
}
