import Foundation
import ServiceSupport

/// A user who can sign in to DevIdP, read from the checked-in users file.
struct DemoUser: Codable, Sendable, Equatable {
    let username: String
    let password: String
    /// The `sub` of their tokens, `auth0|…` as Auth0 database users have.
    let userID: String
    let name: String
    let email: String
    /// The API permissions assigned to them (Auth0 RBAC).
    let permissions: [String]

    enum CodingKeys: String, CodingKey {
        case username, password, name, email, permissions
        case userID = "user_id"
    }
}

/// The demo users, by username.
struct UserDirectory: Sendable {
    let users: [DemoUser]

    init(users: [DemoUser]) { self.users = users }

    /// Loads a users file (`{"users": [...]}`).
    static func load(path: String) throws(ConfigurationError) -> UserDirectory {
        struct File: Decodable { let users: [DemoUser] }
        do {
            let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            guard !file.users.isEmpty else {
                throw ConfigurationError(variable: "DEVIDP_USERS", problem: "lists no users", example: path)
            }
            return UserDirectory(users: file.users)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(
                variable: "DEVIDP_USERS", problem: "is not a readable users file (\(error))",
                example: "Services/DevIdP/Resources/users.json")
        }
    }

    func user(named username: String) -> DemoUser? {
        users.first { $0.username.lowercased() == username.lowercased() }
    }

    func user(id: String) -> DemoUser? { users.first { $0.userID == id } }

    /// The user with these credentials; the password is compared in constant time.
    func authenticate(username: String, password: String) -> DemoUser? {
        guard let user = user(named: username),
            SecretDigest.constantTimeEqual(Array(user.password.utf8), Array(password.utf8))
        else { return nil }
        return user
    }
}
