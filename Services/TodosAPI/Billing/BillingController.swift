import Hummingbird
import ServiceSupport

/// `/api/billing`: the caller's billing details (fixed demo data), behind `read:billing`, the scope the demo uses to
/// show an assistant being refused.
struct BillingController {
    struct Billing: Codable, Sendable {
        let method: String
        let last4: String
        let expiration: String
    }
    struct BillingResponse: ResponseEncodable { let billing: Billing }

    func addRoutes(to group: RouterGroup<TodosRequestContext>) {
        group.get("billing") { _, context in
            _ = try context.requireScope("read:billing")
            return BillingResponse(billing: Billing(method: "credit-card", last4: "1234", expiration: "01/2027"))
        }
        group.refuseOtherMethods(on: "billing", allowed: [.get])
    }
}
