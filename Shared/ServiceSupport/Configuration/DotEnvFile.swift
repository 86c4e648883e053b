import Foundation

/// Reads a dotenv file such as `.dev.vars`: `NAME=value` lines, `#` comments, optional `export`, single- or
/// double-quoted values (double quotes understand `\n`, `\"` and `\\`), and `# comments` after unquoted values.
public enum DotEnvFile {
    /// Why a dotenv file could not be read.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        /// The 1-based line number.
        public let line: Int
        /// What is wrong with it.
        public let problem: String
        public var description: String { "line \(line): \(problem)" }
    }

    /// The variables of the file at `path`; an empty dictionary when the file does not exist.
    public static func load(path: String) throws -> [String: String] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        return try parse(String(contentsOfFile: path, encoding: .utf8))
    }

    /// The variables of a dotenv text. A later definition of a name replaces an earlier one.
    public static func parse(_ text: String) throws(ParseError) -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(line: index + 1, problem: "expected NAME=value")
            }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            guard isValidName(name) else {
                throw ParseError(line: index + 1, problem: "'\(name)' is not a valid variable name")
            }
            values[name] = try value(of: line[line.index(after: equals)...], line: index + 1)
        }
        return values
    }

    private static func value(of raw: Substring, line: Int) throws(ParseError) -> String {
        let text = raw.drop(while: { $0 == " " || $0 == "\t" })
        guard let quote = text.first, quote == "\"" || quote == "'" else {
            // Unquoted: a '#' after whitespace starts a comment.
            var result = String(text)
            if let comment = result.range(of: " #") ?? result.range(of: "\t#") {
                result = String(result[..<comment.lowerBound])
            }
            return result.trimmingCharacters(in: .whitespaces)
        }
        var result = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            if character == quote { return result }
            if quote == "\"", character == "\\", text.index(after: index) < text.endIndex {
                index = text.index(after: index)
                switch text[index] {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(text[index])
                }
            } else {
                result.append(character)
            }
            index = text.index(after: index)
        }
        throw ParseError(line: line, problem: "unterminated quoted value")
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || first.isLetter else { return false }
        return name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
