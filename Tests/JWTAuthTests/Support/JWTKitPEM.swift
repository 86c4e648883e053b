import JWTKit

@testable import JWTAuth

/// The public half of a test key in the forms an attacker would have it.
enum JWTKitPEM {
    static func publicKey(of key: RSASigningKey) throws -> JWTKit.Insecure.RSA.PublicKey {
        try JWTKit.Insecure.RSA.PrivateKey(pem: key.pemRepresentation).publicKey
    }

    static func publicPEM(of key: RSASigningKey) throws -> String {
        try publicKey(of: key).pemRepresentation
    }
}
