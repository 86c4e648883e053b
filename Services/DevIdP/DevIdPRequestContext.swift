import Hummingbird

/// DevIdP's request context: nothing beyond Hummingbird's core storage.
struct DevIdPRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: Source) {
        self.coreContext = .init(source: source)
    }
}
