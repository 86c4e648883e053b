import Foundation
import GRDB
import JWTAuth
import Testing

@testable import TodosAPI

/// Owners became (issuer, subject) pairs in migration v2: a database from before keeps every todo with its owner,
/// now a subject of the provider TodosAPI trusted then.
@Suite("TodosAPI database migrations")
struct TodoDatabaseMigrationTests {
    /// A database as version 1 left it, with one owner and their todo `t1` ("kept"), migrated to the current schema
    /// with `legacyOwnerIssuer`.
    static func migratedFromVersion1(owner: String, legacyOwnerIssuer: String) async throws -> DatabaseQueue {
        let database = try DatabaseQueue()
        let migrator = TodoDatabase.migrator(legacyOwnerIssuer: legacyOwnerIssuer)
        try migrator.migrate(database, upTo: "v1: todos and owners")
        let then = Date(timeIntervalSince1970: 1_700_000_000)
        try await database.write { db in
            try db.execute(sql: "INSERT INTO owner (sub, firstSeenAt) VALUES (?, ?)", arguments: [owner, then])
            try db.execute(
                sql: """
                    INSERT INTO todo (id, owner, title, description, due, completed, createdAt, updatedAt)
                    VALUES ('t1', ?, 'kept', '', NULL, 0, ?, ?)
                    """, arguments: [owner, then, then])
        }
        try migrator.migrate(database)
        return database
    }

    @Test func ownersOfBeforeBecomeSubjectsOfTheLegacyIssuer() async throws {
        let database = try await Self.migratedFromVersion1(
            owner: "auth0|alice", legacyOwnerIssuer: "https://tenant.example.com/")
        let repository = SQLiteTodoRepository(database: database)
        let alice = TodoOwner(issuer: "https://tenant.example.com/", subject: "auth0|alice")
        // Seen before: no sample todos are added, and the old todo is hers.
        let todos = try await repository.list(owner: alice)
        #expect(todos.map(\.title) == ["kept"])
        #expect(todos.first?.owner == "auth0|alice")
        // The same subject of another issuer owns nothing of hers.
        let stranger = TodoOwner(issuer: "https://other-as.example.com", subject: "auth0|alice")
        #expect(try await repository.find(id: "t1", owner: stranger) == nil)
        #expect(try await repository.delete(id: "t1", owner: stranger) == false)
        #expect(try await repository.list(owner: stranger).allSatisfy { $0.title != "kept" })
        #expect(try await repository.find(id: "t1", owner: alice)?.title == "kept")
    }
}

extension TodoDatabaseMigrationTests {
    /// TodosAPI that trusted only the gateway cannot know whose subjects its owners were: the first issuer that
    /// presents a subject takes that owner's todos (what the gateway's `sub_id` names: Google, GitHub, an external
    /// authorization server); another issuer presenting the same subject afterwards gets an owner of its own.
    @Test func ownersOfAnUnknownIssuerAreTakenByTheFirstIssuerThatPresentsThem() async throws {
        let database = try await Self.migratedFromVersion1(owner: "1042", legacyOwnerIssuer: "")
        let repository = SQLiteTodoRepository(database: database)
        let google = TodoOwner(issuer: "https://accounts.google.com", subject: "1042")
        #expect(try await repository.list(owner: google).map(\.title) == ["kept"])
        let other = TodoOwner(issuer: "https://other-as.example.com", subject: "1042")
        #expect(try await repository.find(id: "t1", owner: other) == nil)
        #expect(try await repository.list(owner: other).allSatisfy { $0.title != "kept" })
        #expect(try await repository.list(owner: google).map(\.title) == ["kept"])
    }
}
