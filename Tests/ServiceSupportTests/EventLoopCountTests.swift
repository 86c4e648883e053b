import Foundation
import Testing

@testable import ServiceSupport

@Suite("Event loops by CPU affinity")
struct EventLoopCountTests {
    @Test func fewerAllowedCPUsThanNIOWouldUseSetTheCount() {
        #expect(EventLoopCount.loopCount(allowedCPUs: 1, nioCount: 2) == 1)
        #expect(EventLoopCount.loopCount(allowedCPUs: 3, nioCount: 64) == 3)
    }

    @Test func otherwiseNIOsOwnCountStays() {
        // As many or more (a cgroup quota below the affinity mask is NIO's own business), or nothing known.
        #expect(EventLoopCount.loopCount(allowedCPUs: 2, nioCount: 2) == nil)
        #expect(EventLoopCount.loopCount(allowedCPUs: 8, nioCount: 2) == nil)
        #expect(EventLoopCount.loopCount(allowedCPUs: nil, nioCount: 2) == nil)
        #expect(EventLoopCount.loopCount(allowedCPUs: 0, nioCount: 2) == nil)
    }

    @Test func theMaskOfProcStatusIsCounted() {
        #expect(EventLoopCount.allowedCPUs(status: "Name:\tx\nCpus_allowed:\t1\nCpus_allowed_list:\t0\n") == 1)
        #expect(EventLoopCount.allowedCPUs(status: "Cpus_allowed:\tff\n") == 8)
        #expect(EventLoopCount.allowedCPUs(status: "Cpus_allowed:\t00000000,00000003\n") == 2)
        #expect(EventLoopCount.allowedCPUs(status: "Cpus_allowed:\t80000000,00000001\n") == 2)
        #expect(EventLoopCount.allowedCPUs(status: "Cpus_allowed:\t0\n") == nil)
        #expect(EventLoopCount.allowedCPUs(status: "Cpus_allowed:\tzz\n") == nil)
        #expect(EventLoopCount.allowedCPUs(status: "Name:\tx\n") == nil)
    }

    #if os(Linux)
    @Test func theAffinityMaskIsRead() throws {
        let allowed = try #require(EventLoopCount.allowedCPUs())
        #expect(allowed >= 1)
        // This process may run on every CPU the machine has online, unless it was started pinned.
        #expect(allowed <= Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
    #endif
}
