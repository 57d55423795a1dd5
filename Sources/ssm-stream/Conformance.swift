import ArgumentParser
import Foundation
import SSM
#if canImport(Glibc)
import Glibc
#endif

struct Conformance: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this engine against golden vectors from the upstream implementations.",
        discussion: """
        Runs every *.safetensors case found under the given directories (recursively) in every mode \
        its family has (step, block scan, parallel scan, convolution) and compares outputs and final \
        states with the references in the file. Prints one line per case and exits 1 if any case \
        fails or belongs to a family this build does not implement.

        Examples:
          ssm-stream conformance ../shared/golden
          ssm-stream conformance ../shared/golden/s4d ../shared/golden/s5 \\
              ../shared/golden/lru -v
        """)

    @Argument(help: "Directories (or files) holding golden case files.")
    var paths: [String]

    @Flag(name: .shortAndLong, help: "Also print every mode's comparison.")
    var verbose = false

    func run() throws {
        let missing = paths.filter { !FileManager.default.fileExists(atPath: $0) }
        let files = paths.flatMap(findCases).sorted()
        guard !files.isEmpty else {
            warn("ssm-stream conformance: no *.safetensors files under \(paths.joined(separator: ", "))")
            throw ExitCode(ExitStatus.noInput)
        }
        print(pad("family", 7) + pad("case", 48) + pad("max abs", 11) + pad("max rel", 11) + pad("atol/rtol", 15) + "result")
        var failed = 0
        for f in files {
            let r = SSM.Conformance.run(path: f)
            let result = r.pass ? "PASS" : "FAIL"
            if !r.pass { failed += 1 }
            print(pad(r.family, 7) + pad(r.caseName, 48) + pad(sci(r.maxAbs), 11) + pad(sci(r.maxRel), 11)
                  + pad("\(sci(r.atol))/\(sci(r.rtol))", 15) + result + (r.problem.map { "  (\($0))" } ?? ""))
            if verbose || !r.pass {
                for c in r.checks where verbose || !c.pass {
                    print("         \(pad(c.mode, 16)) vs \(pad(c.reference, 18)) max abs \(sci(c.maxAbs))  max rel \(sci(c.maxRel))  \(c.pass ? "ok" : "FAIL")")
                }
            }
        }
        print("\(files.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(ExitStatus.failure) }
        if !missing.isEmpty {
            warn("ssm-stream conformance: \(missing.count) path(s) missing: \(missing.joined(separator: ", "))")
            throw ExitCode(ExitStatus.noInput)
        }
    }

    func findCases(_ path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            warn("ssm-stream conformance: '\(path)' does not exist"); return []
        }
        if !isDir.boolValue { return [path] }
        let items = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
        return items.filter { $0.hasSuffix(".safetensors") }.map { path + "/" + $0 }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func sci(_ x: Double) -> String {
    if x.isNaN { return "-" }
    if x == 0 { return "0" }
    var buf = [CChar](repeating: 0, count: 32)
    _ = withVaList([x]) { vsnprintf(&buf, 32, "%.2e", $0) }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
