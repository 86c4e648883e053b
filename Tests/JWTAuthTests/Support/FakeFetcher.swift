import Foundation
import JWTAuth
import Synchronization

/// A document fetcher that serves what the test says, counts fetches and can be slow or down.
final class FakeFetcher: DocumentFetching {
    enum Answer {
        case document([UInt8], maxAge: TimeInterval?)
        case failure
    }

    private let state = Mutex<(answers: [String: Answer], counts: [String: Int])>(([:], [:]))
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
        case .failure, nil: throw DocumentFetchError("GET \(url) failed")
        }
    }
}
