import Foundation
import JWTAuth
import Synchronization

/// A document fetcher that serves what the test says, counts fetches and can be slow or down.
final class FakeFetcher: DocumentFetching {
    enum Answer {
        case document([UInt8], maxAge: TimeInterval?)
        case failure
        /// Blocks until ``release()``, then fails.
        case hang
    }

    private let state = Mutex<(answers: [String: Answer], counts: [String: Int])>(([:], [:]))
    private let gate = AsyncStream<Void>.makeStream()

    /// Lets every hanging fetch finish (with a failure).
    func release() { gate.continuation.finish() }
    let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    func serve(_ url: String, _ answer: Answer) {
        state.withLock { $0.answers[url] = answer }
    }

    func fetchCount(_ url: String) -> Int { state.withLock { $0.counts[url] ?? 0 } }

    func fetch(_ url: String) async throws -> FetchedDocument {
        let answer = state.withLock { state in
            state.counts[url, default: 0] += 1
            return state.answers[url]
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        switch answer {
        case .document(let body, let maxAge): return FetchedDocument(body: body, maxAge: maxAge)
        case .hang:
            for await _ in gate.stream {}
            throw DocumentFetchError("GET \(url) timed out")
        case .failure, nil: throw DocumentFetchError("GET \(url) failed")
        }
    }
}
