/// The part of TOML (https://toml.io/en/v1.0.0) a daemon configuration needs, parsed with line
/// numbers kept for every key so a mistake is reported where it is:
///
///     # comment
///     model = "models/kws.safetensors"      # basic "…" (with \" \\ \n \t \uXXXX) or literal '…' strings
///     block = 256                           # integers (1_000, 0x10), floats (0.5, 1e-3), booleans
///     [source]                              # tables, also dotted: [a.b]
///     ignore = ["noise", "silence"]         # arrays, also spread over several lines
///
/// Refused with a message naming the line: inline tables, arrays of tables, multi-line strings,
/// dates, dotted keys, a key or table given twice. A configuration needs none of them.
public enum TOML {
    public enum Value: Equatable, Sendable {
        case string(String), integer(Int), float(Double), bool(Bool), array([Value])

        public var typeName: String {
            switch self {
            case .string: "a string"
            case .integer: "an integer"
            case .float: "a number"
            case .bool: "a boolean"
            case .array: "an array"
            }
        }
    }

    /// One `key = value` with the table it is in ("" for the top level) and its line.
    public struct Entry: Sendable {
        public let table: String
        public let key: String
        public let value: Value
        public let line: Int
    }

    public struct ParseError: Error, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// A parsed document: its entries in order, and the tables it opened (with their lines).
    public struct Document: Sendable {
        public var entries: [Entry] = []
        public var tables: [(name: String, line: Int)] = []
    }

    /// The deepest nesting of arrays accepted (a configuration needs 1; 100,000 would exhaust the
    /// stack of a recursive parser).
    public static let maxNesting = 32

    public static func parse(_ text: String) throws(ParseError) -> Document {
        var doc = Document()
        var table = ""
        var seenKeys = Set<String>()
        var seenTables: Set<String> = [""]
        // Split the bytes, not the Characters: "\r\n" is one Character, so a CRLF file split on
        // Character "\n" would be a single line.
        let lines = Array(text.utf8).split(separator: 10, omittingEmptySubsequences: false).map { Array($0) }
        var i = 0
        while i < lines.count {
            let number = i + 1
            var line = lines[i]
            if line.last == 13 { line.removeLast() }  // CRLF
            i += 1
            var p = Parser(bytes: line, line: number)
            p.skipSpace()
            if p.atEndOrComment { continue }
            if p.peek == UInt8(ascii: "[") {
                p.advance()
                if p.peek == UInt8(ascii: "[") { throw ParseError(line: number, message: "arrays of tables ([[…]]) are not supported in this configuration") }
                p.skipSpace()
                var parts: [String] = []
                repeat {
                    p.skipSpace()
                    parts.append(try p.key())
                    p.skipSpace()
                } while p.eat(UInt8(ascii: "."))
                guard p.eat(UInt8(ascii: "]")) else { throw ParseError(line: number, message: "expected ']' to close the table name") }
                p.skipSpace()
                guard p.atEndOrComment else { throw ParseError(line: number, message: "unexpected text after the table name") }
                table = parts.joined(separator: ".")
                guard seenTables.insert(table).inserted else { throw ParseError(line: number, message: "table [\(table)] is given twice") }
                doc.tables.append((table, number))
                continue
            }
            let key = try p.key()
            p.skipSpace()
            if p.peek == UInt8(ascii: ".") { throw ParseError(line: number, message: "dotted keys ('\(key).…') are not supported; use a [table]") }
            guard p.eat(UInt8(ascii: "=")) else { throw ParseError(line: number, message: "expected '=' after key '\(key)'") }
            p.skipSpace()
            // An array may continue over the following lines: join them until its brackets close.
            if p.peek == UInt8(ascii: "[") {
                var joined = Array(line[p.index...])
                while !Parser.bracketsClosed(joined) {
                    guard i < lines.count else { throw ParseError(line: number, message: "array of key '\(key)' is not closed with ']'") }
                    joined.append(10); joined += lines[i]
                    i += 1
                }
                p = Parser(bytes: joined, line: number)
            }
            let value = try p.value()
            p.skipSpace()
            guard p.atEndOrComment else {
                throw ParseError(line: number, message: "unexpected text after the value of '\(key)': \(p.peek.map(Parser.describe) ?? "")")
            }
            let full = table.isEmpty ? key : "\(table).\(key)"
            guard seenKeys.insert(full).inserted else { throw ParseError(line: number, message: "key '\(key)' is given twice\(table.isEmpty ? "" : " in [\(table)]")") }
            doc.entries.append(Entry(table: table, key: key, value: value, line: number))
        }
        return doc
    }

    private struct Parser {
        let bytes: [UInt8]
        let line: Int
        var index = 0
        init(bytes: [UInt8], line: Int) { self.bytes = bytes; self.line = line }

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
        var atEndOrComment: Bool { peek == nil || peek == UInt8(ascii: "#") }
        mutating func advance() { index += 1 }
        mutating func eat(_ b: UInt8) -> Bool {
            guard peek == b else { return false }
            index += 1
            return true
        }
        mutating func skipSpace(newlines: Bool = false) {
            while let b = peek, b == 32 || b == 9 || (newlines && (b == 10 || b == 13)) { index += 1 }
        }
        /// Skips spaces, newlines and comments (inside arrays).
        mutating func skipBlank() {
            while true {
                skipSpace(newlines: true)
                guard peek == UInt8(ascii: "#") else { return }
                while let b = peek, b != 10 { _ = b; index += 1 }
            }
        }

        func fail(_ m: String) -> ParseError { ParseError(line: line, message: m) }

        /// A byte as a user can read it in a message: 'x' when printable, else its name or code.
        static func describe(_ b: UInt8) -> String {
            switch b {
            case 13: return "carriage return (\\r)"
            case 0: return "NUL byte (0x00)"
            case 0x21...0x7E: return "'\(String(decoding: [b], as: UTF8.self))'"
            default: return "byte 0x" + String(b, radix: 16, uppercase: true)
            }
        }

        static func isBare(_ b: UInt8) -> Bool {
            (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 95 || b == 45
        }

        mutating func key() throws(ParseError) -> String {
            if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") {
                guard case .string(let s) = try value() else { throw fail("bad key") }
                return s
            }
            let start = index
            while let b = peek, Self.isBare(b) { index += 1 }
            guard index > start else {
                throw fail(peek.map { "unexpected \(Self.describe($0)): expected a key (letters, digits, '_' and '-')" } ?? "expected a key")
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// One value; `depth` counts the arrays it is inside.
        mutating func value(depth: Int = 0) throws(ParseError) -> Value {
            guard let b = peek else { throw fail("expected a value") }
            switch b {
            case UInt8(ascii: "\""):
                if bytes[index...].starts(with: Array("\"\"\"".utf8)) { throw fail("multi-line strings (\"\"\") are not supported in this configuration") }
                return .string(try basicString())
            case UInt8(ascii: "'"):
                if bytes[index...].starts(with: Array("'''".utf8)) { throw fail("multi-line strings (''') are not supported in this configuration") }
                index += 1
                let start = index
                while let c = peek, c != UInt8(ascii: "'") { if c == 10 { break }; index += 1 }
                guard eat(UInt8(ascii: "'")) else { throw fail("string is not closed with '") }
                return .string(String(decoding: bytes[start..<(index - 1)], as: UTF8.self))
            case UInt8(ascii: "["):
                guard depth < TOML.maxNesting else { throw fail("arrays nested more than \(TOML.maxNesting) deep are not supported") }
                index += 1
                var items: [Value] = []
                while true {
                    skipBlank()
                    if eat(UInt8(ascii: "]")) { break }
                    items.append(try value(depth: depth + 1))
                    skipBlank()
                    if eat(UInt8(ascii: ",")) { continue }
                    skipBlank()
                    guard eat(UInt8(ascii: "]")) else { throw fail("expected ',' or ']' in the array") }
                    break
                }
                return .array(items)
            case UInt8(ascii: "{"):
                throw fail("inline tables ({…}) are not supported in this configuration; use a [table]")
            default:
                let start = index
                while let c = peek, c != 32, c != 9, c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "#"), c != 10 { index += 1 }
                let word = String(decoding: bytes[start..<index], as: UTF8.self)
                return try scalar(word)
            }
        }

        func scalar(_ word: String) throws(ParseError) -> Value {
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            let clean = word.replacingUnderscores()
            if word.contains("-") && word.count >= 10 && word.first!.isNumber && word.dropFirst(4).first == "-" {
                throw fail("dates are not supported in this configuration ('\(word)')")
            }
            if clean.hasPrefix("0x"), let v = Int(clean.dropFirst(2), radix: 16) { return .integer(v) }
            if clean.hasPrefix("0o"), let v = Int(clean.dropFirst(2), radix: 8) { return .integer(v) }
            if clean.hasPrefix("0b"), let v = Int(clean.dropFirst(2), radix: 2) { return .integer(v) }
            if let v = Int(clean) { return .integer(v) }
            switch clean {
            case "inf", "+inf": return .float(.infinity)
            case "-inf": return .float(-.infinity)
            case "nan", "+nan", "-nan": return .float(.nan)
            default: break
            }
            // Decimal only (Double() would also take hex floats such as "0x1p3").
            if clean.allSatisfy({ $0.isNumber || "+-.eE".contains($0) }), let v = Double(clean),
               clean.first != ".", clean.last != "." { return .float(v) }
            throw fail("'\(word)' is not a value (strings need quotes: \"\(word)\")")
        }

        mutating func basicString() throws(ParseError) -> String {
            index += 1
            var out: [UInt8] = []
            while let c = peek {
                index += 1
                switch c {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw fail("string ends inside an escape") }
                    index += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(34)
                    case UInt8(ascii: "\\"): out.append(92)
                    case UInt8(ascii: "n"): out.append(10)
                    case UInt8(ascii: "t"): out.append(9)
                    case UInt8(ascii: "r"): out.append(13)
                    case UInt8(ascii: "b"): out.append(8)
                    case UInt8(ascii: "f"): out.append(12)
                    case UInt8(ascii: "u"), UInt8(ascii: "U"):
                        let n = e == UInt8(ascii: "u") ? 4 : 8
                        guard index + n <= bytes.count,
                              let v = UInt32(String(decoding: bytes[index..<(index + n)], as: UTF8.self), radix: 16),
                              let scalar = Unicode.Scalar(v) else { throw fail("bad \\u escape in string") }
                        out += Array(String(Character(scalar)).utf8)
                        index += n
                    default:
                        throw fail("unknown escape '\\\(String(decoding: [e], as: UTF8.self))' in string (use \\\\ for a backslash)")
                    }
                case 10:
                    throw fail("string is not closed with \"")
                default:
                    out.append(c)
                }
            }
            throw fail("string is not closed with \"")
        }

        /// Whether the '[' … ']' brackets of an array value (outside strings and comments) balance.
        static func bracketsClosed(_ b: [UInt8]) -> Bool {
            var depth = 0, i = 0
            var quote: UInt8? = nil
            while i < b.count {
                let c = b[i]
                if let q = quote {
                    if c == 92 && q == 34 { i += 1 } else if c == q { quote = nil }
                } else if c == 34 || c == 39 {
                    quote = c
                } else if c == UInt8(ascii: "#") {
                    while i < b.count && b[i] != 10 { i += 1 }
                } else if c == UInt8(ascii: "[") {
                    depth += 1
                } else if c == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return true }
                }
                i += 1
            }
            return false
        }
    }
}

private extension String {
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
