// Golden conformance: every upstream case of the LTI families runs through the engine in every
// mode (step, block scan, parallel scan, FFT convolution) and must match upstream's outputs and
// final states within the tolerance recorded in the file (see ../shared/golden/README.md).

import Foundation
import Testing
@testable import SSM

@Suite("Golden conformance")
struct GoldenTests {
    @Test("the golden directory is found next to the repository")
    func goldenDirectoryExists() {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: goldenRoot, isDirectory: &isDir)
        #expect(exists && isDir.boolValue, "golden vectors not found at \(goldenRoot) (expected <repo>/../shared/golden)")
    }

    @Test("every case passes in every mode", arguments: ["s4", "s4d", "s5", "lru", "s6", "rglru"])
    func familyPasses(_ family: String) throws {
        let files = try #require(goldenFiles(family), "golden directory \(goldenRoot)/\(family) is missing")
        #expect(files.count >= 3, "expected at least 3 \(family) cases in \(goldenRoot)/\(family), found \(files.count)")
        for path in files {
            let name = (path as NSString).lastPathComponent
            let result = Conformance.run(path: path)
            #expect(result.problem == nil, "\(name): \(result.problem ?? "")")
            #expect(result.family == family, "\(name): metadata family '\(result.family)'")
            for c in result.checks where !c.pass {
                Issue.record("\(name): mode \(c.mode) vs \(c.reference): max abs \(c.maxAbs), max rel \(c.maxRel) (atol \(result.atol), rtol \(result.rtol))")
            }
            #expect(result.pass, "\(name) fails conformance")

            // Every mode was actually compared, against the upstream output.
            let modes = Set(result.checks.map(\.mode))
            let lti = ["s4", "s4d", "s5", "lru"].contains(family)
            for mode in ["step", "block", "parallel"] + (lti ? ["conv"] : []) {
                #expect(result.checks.contains { $0.mode == mode && $0.reference == "output" }, "\(name): no '\(mode)' check against 'output'")
            }
            // Final states, where the file has them.
            let st = try SafeTensors(contentsOfFile: path)
            if st.tensors["state_final"] != nil {
                for mode in ["step+state", "block+state", "parallel+state"] {
                    #expect(modes.contains(mode), "\(name) has state_final but no '\(mode)' check (checks: \(modes.sorted()))")
                }
            }
            if st.tensors["output_step"] != nil {
                #expect(result.checks.contains { $0.mode == "step" && $0.reference == "output_step" }, "\(name): no step check against 'output_step'")
            }
            // The errors are far below the tolerance (the README measures 1e-6 … 1e-5).
            #expect(result.maxRel < 1e-4, "\(name): max rel \(result.maxRel)")
        }
    }

    /// The same comparison must fail when the reference is wrong: perturb one output value of a real
    /// case by 100 × atol and one final-state value, and conformance must say so in the right check.
    @Test("a perturbed reference is caught")
    func perturbedReferenceFails() throws {
        let path = try #require(goldenFiles("lru")?.first { $0.hasSuffix("lru_H4_N8_L64_B2.safetensors") },
                                "lru_H4_N8_L64_B2.safetensors missing under \(goldenRoot)/lru")
        let st = try SafeTensors(contentsOfFile: path)
        func rebuilt(_ edit: (String, inout [Float]) -> Void) throws -> SafeTensors {
            var f32: [(name: String, shape: [Int], values: [Float])] = []
            var f64: [(name: String, shape: [Int], values: [Double])] = []
            for name in st.names {
                let info = try st.info(name)
                if info.dtype == .f64 { f64.append((name, info.shape, try st.doubles(name))) }
                else { var v = try st.floats(name); edit(name, &v); f32.append((name, info.shape, v)) }
            }
            return try SafeTensors(bytes: SafeTensors.serialize(f32, doubles: f64, metadata: st.metadata))
        }
        // Unchanged copy passes (the rebuilding itself is faithful).
        #expect(Conformance.run(try rebuilt { _, _ in }, fallbackName: "copy").pass)

        let bad = Conformance.run(try rebuilt { n, v in if n == "output" { v[37] += 1e-2 } }, fallbackName: "bad-output")
        #expect(!bad.pass)
        #expect(bad.checks.filter { !$0.pass }.allSatisfy { $0.reference == "output" })
        #expect(Set(bad.checks.filter { !$0.pass }.map(\.mode)) == ["step", "block", "parallel", "conv"])

        let badState = Conformance.run(try rebuilt { n, v in if n == "state_final" { v[5] += 1e-2 } }, fallbackName: "bad-state")
        #expect(!badState.pass)
        #expect(Set(badState.checks.filter { !$0.pass }.map(\.mode)) == ["step+state", "block+state", "parallel+state"])
    }
}
