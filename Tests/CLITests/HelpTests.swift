// Help you can paste: every subcommand's --help has examples, each kept whole within 80 columns
// (a long one broken with a trailing backslash, never wrapped mid-command by the help printer),
// and the README's synopsis names every subcommand.

import Foundation
import Testing

private let subcommands = ["run", "design", "inspect", "plot", "chain", "convert", "init", "train", "eval", "conformance", "bench",
                           "status", "events", "reload", "version"]

@Suite("--help of every subcommand")
struct HelpTests {
    @Test("has examples, each line within 80 columns and indented (not wrapped by the help printer)", arguments: subcommands)
    func examples(_ sub: String) throws {
        let r = try runCLI([sub, "--help"])
        expectExit(r, 0)
        let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex { $0 == "Examples:" }, "\(sub) --help has no Examples: section")
        let block = lines[(start + 1)...].prefix { !$0.isEmpty }
        #expect(block.count >= 1, "\(sub): no example")
        #expect(block.first?.hasPrefix("  ssm-stream") == true || block.first?.hasPrefix("  ") == true)
        var continued = false
        for line in block {
            #expect(line.count <= 80, "\(sub): \(line.count) columns: \(line)")
            // An example starts at 2 spaces; its continuation lines (after a trailing \) deeper.
            let indent = line.prefix { $0 == " " }.count
            #expect(continued ? indent > 2 : indent == 2, "\(sub): a wrapped or misindented example line: '\(line)'")
            continued = line.hasSuffix("\\")
        }
        #expect(!continued, "\(sub): the last example ends with a backslash")
        #expect(block.contains { $0.contains("ssm-stream") }, "\(sub): no example runs ssm-stream")
    }

    @Test("the README's command-line synopsis names every subcommand")
    func readmeSynopsis() throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let synopsis = try #require(readme.components(separatedBy: "## Command line").dropFirst().first?.components(separatedBy: "```").dropFirst().first)
        for sub in subcommands { #expect(synopsis.contains("ssm-stream \(sub)"), "the synopsis lacks ssm-stream \(sub)") }
    }
}
