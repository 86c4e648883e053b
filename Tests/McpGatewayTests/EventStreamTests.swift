import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import Testing

@testable import McpGateway

/// The bounded event stream under long-lived responses: its byte budget, keep-alives, and what happens to a client
/// that stops reading.
@Suite("MCP event streams")
struct EventStreamTests {
    /// A body writer that records what it is given, or never returns from a write (a client that does not read).
    final class Writer: ResponseBodyWriter, @unchecked Sendable {
        let blocks: Bool
        let written = Mutex<[String]>([])
        init(blocks: Bool = false) { self.blocks = blocks }

        func write(_ buffer: ByteBuffer) async throws {
            if blocks { try await Task.sleep(for: .seconds(3600)) }
            written.withLock { $0.append(String(buffer: buffer)) }
        }

        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    func limits(bytes: Int = 100, stall: Duration = .seconds(30), keepAlive: Duration = .seconds(15))
        -> EventStream.Limits
    {
        .init(bufferBytes: bytes, stallTimeout: stall, keepAliveInterval: keepAlive)
    }

    @Test func aClientThatDoesNotReadLosesItsStreamAtTheBudget() {
        let stream = EventStream(limits: limits(bytes: 100))
        #expect(stream.send(Array(repeating: 0x61, count: 60)))
        #expect(stream.send(Array(repeating: 0x61, count: 40)))
        #expect(!stream.send([0x61]))
        #expect(!stream.isOpen)
        #expect(stream.closeReason?.contains("does not read") == true)
        #expect(!stream.send([0x61]))
    }

    @Test func writtenEventsFreeTheirBytes() async {
        let stream = EventStream(limits: limits(bytes: 100))
        let writer = Writer()
        let pump = Task {
            var output: any ResponseBodyWriter = writer
            await stream.pump(into: &output)
        }
        for _ in 0..<50 {
            #expect(stream.send(Array(repeating: 0x61, count: 60)))
            // Each event is written before the next is queued: the budget never fills.
            for _ in 0..<200 where writer.written.withLock({ $0.count }) < 1 {
                try? await Task.sleep(for: .milliseconds(1))
            }
            writer.written.withLock { $0.removeAll() }
        }
        stream.close(reason: "done")
        await pump.value
    }

    @Test func aStalledClientIsLetGo() async {
        let stream = EventStream(limits: limits(bytes: 1000, stall: .milliseconds(200), keepAlive: .seconds(15)))
        var writer: any ResponseBodyWriter = Writer(blocks: true)
        #expect(stream.send(Array("event: message\ndata: {}\n\n".utf8)))
        let started = ContinuousClock.now
        await stream.pump(into: &writer)
        #expect(ContinuousClock.now - started < .seconds(30))  // a hang, not a speed: the writer never returns
        #expect(stream.closeReason?.contains("stopped reading") == true)
    }

    @Test func quietStreamsSendKeepAlives() async {
        let stream = EventStream(limits: limits(bytes: 1000, stall: .seconds(30), keepAlive: .milliseconds(40)))
        let writer = Writer()
        let pump = Task {
            var output: any ResponseBodyWriter = writer
            await stream.pump(into: &output)
        }
        // Waits for two keep-alives (up to ten seconds: the test machine may be busy).
        for _ in 0..<1000 where writer.written.withLock({ $0.count }) < 2 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        stream.close(reason: "done", finalEvent: Array("event: message\ndata: {\"final\":true}\n\n".utf8))
        await pump.value
        let written = writer.written.withLock { $0 }
        #expect(written.filter { $0 == ": keep-alive\n\n" }.count >= 2)
        #expect(written.last?.contains("final") == true)
    }

    @Test func eventsAreFramedLineByLine() {
        #expect(
            String(decoding: EventStream.message(Array(#"{"a":1}"#.utf8)), as: UTF8.self)
                == "event: message\ndata: {\"a\":1}\n\n")
        #expect(
            String(decoding: EventStream.event("endpoint", Array("a\nb".utf8)), as: UTF8.self)
                == "event: endpoint\ndata: a\ndata: b\n\n")
    }
}
