// The streaming loop of `ssm-stream run` allocates nothing per block: the release binary's heap
// allocations are counted (an LD_PRELOAD shim around glibc's malloc family, compiled here with
// the system C compiler) for a short and a ten times longer input; every allocation the longer
// run makes beyond the shorter one's would be a per-block allocation.

import Foundation
import Testing
import SSMIO

/// Counts malloc/calloc/realloc/memalign-family calls; writes the count to $SSM_MALLOC_COUNT at exit.
private let shimSource = #"""
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static atomic_long calls;
void *malloc(size_t n) { atomic_fetch_add(&calls, 1); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add(&calls, 1); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&calls, 1); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add(&calls, 1); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&calls, 1); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    atomic_fetch_add(&calls, 1);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
__attribute__((destructor)) static void report(void) {
    const char *path = getenv("SSM_MALLOC_COUNT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (f) { fprintf(f, "%ld\n", (long)atomic_load(&calls)); fclose(f); }
}
"""#

/// Builds the shim into `dir`; returns the .so path.
private func buildShim(_ dir: TempDir) throws -> String {
    let src = dir.file("count.c"), lib = dir.file("libcount.so")
    try shimSource.write(toFile: src, atomically: true, encoding: .utf8)
    let cc = Process()
    cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    cc.arguments = ["cc", "-shared", "-fPIC", "-O2", "-o", lib, src]
    try cc.run()
    cc.waitUntilExit()
    try #require(cc.terminationStatus == 0, "cc could not build the malloc-counting shim")
    return lib
}

/// The release build: the claim is about the binary users run (a debug build keeps closure contexts
/// and array copies on the heap that the optimizer removes). test.sh builds it.
let releaseCLI = packageRoot.appendingPathComponent(".build/release/ssm-stream")

/// Heap allocations of one release `ssm-stream` run.
private func allocations(_ args: [String], shim: String, dir: TempDir, stdin: Stdin = .null) throws -> Int {
    let countFile = dir.file("count-\(UUID().uuidString)")
    // OPENBLAS_NUM_THREADS=1: OpenBLAS then starts no worker threads, whose start-up allocations
    // race the exit of a short run (run pins OpenBLAS to one thread anyway, after they started).
    let r = try runCLI(args, stdin: stdin, timeout: 120,
                       environment: ["LD_PRELOAD": shim, "SSM_MALLOC_COUNT": countFile, "OPENBLAS_NUM_THREADS": "1"],
                       executable: releaseCLI)
    expectExit(r, 0)
    let text = try String(contentsOfFile: countFile, encoding: .utf8)
    return try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
}

@Suite("ssm-stream run: allocations per block")
struct AllocationTests {
    static let designed = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path

    @Test("a 10× longer input makes no more heap allocations: WAV step and block, raw pipe, text per-channel with resampling, classifier events, Mamba, Hawk/Griffin, H3 and S4D stacks in step and block mode")
    func steadyState() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path),
                     "no release build at \(releaseCLI.path): run ./test.sh, or swift build -c release --product ssm-stream")
        let dir = TempDir()
        let shim = try buildShim(dir)
        // 1 s and 10 s of a tone with noise (62 and 625 blocks of 256).
        func signal(_ seconds: Double, rate: Double = 16000) -> [Float] {
            var g = UInt64(1)
            return (0..<Int(seconds * rate)).map { i in
                g = g &* 6364136223846793005 &+ 1442695040888963407
                return Float(0.4 * sin(2 * .pi * 440 * Double(i) / rate)) + Float(Int64(bitPattern: g >> 11) % 1000) * 1e-4
            }
        }
        var cases: [(String, [String], [String], Stdin, Stdin)] = []
        let short = dir.file("short.wav"), long = dir.file("long.wav")
        try writeWAV(short, format: AudioFormat.wav16, signal(1)); try writeWAV(long, format: AudioFormat.wav16, signal(10))
        cases.append(("WAV, step", ["run", "-q", "--mode", "step", Self.designed, short, dir.file("o1.wav")],
                      ["run", "-q", "--mode", "step", Self.designed, long, dir.file("o2.wav")], .null, .null))
        cases.append(("WAV, block", ["run", "-q", "--mode", "block", modelPath, short, dir.file("o3.wav")],
                      ["run", "-q", "--mode", "block", modelPath, long, dir.file("o4.wav")], .null, .null))
        let rawShort = try [UInt8](Data(contentsOf: URL(fileURLWithPath: short)))[44...]
        let rawLong = try [UInt8](Data(contentsOf: URL(fileURLWithPath: long)))[44...]
        let raw = ["run", "-q", Self.designed, "-", "-", "--input-format", "s16le", "--rate", "16000", "--channels", "1"]
        cases.append(("raw stdin → stdout", raw, raw, .bytes(Array(rawShort)), .bytes(Array(rawLong))))
        func csv(_ x: [Float]) -> String { "a,b\n" + x.map { "\($0),\(-$0)" }.joined(separator: "\n") + "\n" }
        let s8 = signal(1, rate: 8000), l8 = signal(10, rate: 8000)
        try csv(s8).write(toFile: dir.file("s.csv"), atomically: true, encoding: .utf8)
        try csv(l8).write(toFile: dir.file("l.csv"), atomically: true, encoding: .utf8)
        let text = ["--per-channel", "--resample", "--rate", "8000", "--mode", "block"]
        cases.append(("text, per channel, resampled", ["run", "-q", Self.designed, dir.file("s.csv"), dir.file("o5.csv")] + text,
                      ["run", "-q", Self.designed, dir.file("l.csv"), dir.file("o6.csv")] + text, .null, .null))
        let cls = try passThroughClassifier(dir, rate: 16000)
        let ev = ["--threshold", "0.3", "--posteriors", "1000"]
        cases.append(("classifier events", ["run", "-q", cls, short, dir.file("e1.jsonl")] + ev,
                      ["run", "-q", cls, long, dir.file("e2.jsonl")] + ev, .null, .null))
        // Every family's per-sample path, step and block: the architectures shipped in configs/.
        for arch in ["mamba-2x64", "griffin-64", "h3-64", "s4d-classifier"] {
            let model = dir.file(arch + ".safetensors")
            expectExit(try runCLI(["init", "-q", packageRoot.appendingPathComponent("configs/architectures/\(arch).json").path,
                                   "-o", model]), 0)
            for mode in ["step", "block"] {
                cases.append(("\(arch), \(mode)", ["run", "-q", "--mode", mode, model, short, dir.file("\(arch)-s.out")],
                              ["run", "-q", "--mode", mode, model, long, dir.file("\(arch)-l.out")], .null, .null))
            }
        }
        for (name, a, b, inA, inB) in cases {
            let nShort = try allocations(a, shim: shim, dir: dir, stdin: inA)
            let nLong = try allocations(b, shim: shim, dir: dir, stdin: inB)
            #expect(nShort > 100, "\(name): the shim counted \(nShort) allocations; is it loaded?")
            // The long input has 563 more blocks of 256 frames (144 000 more frames): one allocation
            // per block would add ≥ 563. Start-up allocations vary by a few between identical runs
            // (runtime threads race the exit), hence the slack of 16.
            #expect(nLong <= nShort + 16, "\(name): \(nLong - nShort) more allocations for 10× the input (short \(nShort), long \(nLong))")
        }
    }
}
