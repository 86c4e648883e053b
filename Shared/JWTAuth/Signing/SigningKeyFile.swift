import Foundation

/// Keeps a signing key in a PEM file, so that tokens signed before a restart still verify after it.
public enum SigningKeyFile {
    /// Loads the key at `path`, or generates one and writes it there (readable by the owner only) when the file does
    /// not exist. A file that exists but does not hold an RSA private key is an error, never silently replaced.
    public static func loadOrCreate(at path: String) async throws -> RSASigningKey {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            return try await RSASigningKey(pem: pem)
        }
        let key = try await RSASigningKey.generate()
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        guard
            manager.createFile(
                atPath: path, contents: Data(key.pemRepresentation.utf8),
                attributes: [.posixPermissions: 0o600])
        else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return key
    }
}
