/// A setting that is missing or malformed. Its description is the one line a service prints before it exits:
/// the variable, what is wrong, and an example value.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The variable's name, e.g. `AUTH0_DOMAIN`.
    public let variable: String
    /// What is wrong, e.g. `is missing`.
    public let problem: String
    /// A valid value, e.g. `acme.us.auth0.com`.
    public let example: String

    /// Creates an error for `variable`.
    public init(variable: String, problem: String, example: String) {
        self.variable = variable
        self.problem = problem
        self.example = example
    }

    public var description: String {
        "Configuration error: \(variable) \(problem) (for example \(variable)=\(example))"
    }
}
