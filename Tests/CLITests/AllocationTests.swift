// The streaming loop of `ssm-stream run` allocates nothing per block: the release binary's heap
// allocations are counted (an LD_PRELOAD shim around glibc's malloc family, compiled here with
// the system C compiler) for inputs of 1, 10 and 40 seconds, and the least-squares slope of the
// count against the number of blocks must stay under one allocation per ten blocks. Start-up
// allocations jitter by a few dozen between identical runs (runtime threads race the exit); over
// the 2,400 blocks the inputs span that moves the slope by about 0.01, while one allocation per
// block makes it 1.

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
#include <string.h>
#include <sys/prctl.h>
static atomic_long calls, threadCalls;
/* $SSM_MALLOC_THREAD: also count the calls made on threads of that name (prctl is a plain
   system call: it does not allocate). */
static const char *watched;
static void count(void) {
    atomic_fetch_add(&calls, 1);
    if (watched) {
        char name[16] = {0};
        if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strcmp(name, watched) == 0) atomic_fetch_add(&threadCalls, 1);
    }
}
__attribute__((constructor)) static void start(void) { watched = getenv("SSM_MALLOC_THREAD"); }
void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    count();
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}
__attribute__((destructor)) static void report(void) {
    const char *path = getenv("SSM_MALLOC_COUNT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (f) { fprintf(f, "%ld %ld\n", (long)atomic_load(&calls), (long)atomic_load(&threadCalls)); fclose(f); }
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
    return try #require(Int(text.split(separator: " ").first ?? ""))
}

/// The least-squares slope of y against x.
private func leastSquaresSlope(_ x: [Double], _ y: [Double]) -> Double {
    let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
    var sxy = 0.0, sxx = 0.0
    for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx) }
    return sxy / sxx
}

@Suite("ssm-stream run: allocations per block")
struct AllocationTests {
    static let designed = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path

    @Test("heap allocations do not grow with the input (slope over 1, 10 and 40 s): WAV step and block, raw pipe, text per-channel with resampling, classifier events, Mamba, Hawk/Griffin, H3 and S4D stacks (one with mean_norm) in step and block mode")
    func steadyState() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseCLI.path),
                     "no release build at \(releaseCLI.path): run ./test.sh, or swift build -c release --product ssm-stream")
        let dir = TempDir()
        let shim = try buildShim(dir)
        // 1, 10 and 40 s of a tone with noise (62, 625 and 2500 blocks of 256).
        func signal(_ seconds: Double, rate: Double = 16000) -> [Float] {
            var g = UInt64(1)
            return (0..<Int(seconds * rate)).map { i in
                g = g &* 6364136223846793005 &+ 1442695040888963407
                return Float(0.4 * sin(2 * .pi * 440 * Double(i) / rate)) + Float(Int64(bitPattern: g >> 11) % 1000) * 1e-4
            }
        }
        let lengths: [Double] = [1, 10, 40]
        /// A case: its name, its arguments for input i (of `lengths`), and its stdin for input i.
        var cases: [(String, (Int) -> [String], (Int) -> Stdin)] = []
        let wavs = try lengths.indices.map { i in
            let path = dir.file("in\(i).wav")
            try writeWAV(path, format: AudioFormat.wav16, signal(lengths[i]))
            return path
        }
        func out(_ name: String) -> (Int) -> String { { i in dir.file("\(name)\(i).out") } }
        cases.append(("WAV, step", { i in ["run", "-q", "--mode", "step", Self.designed, wavs[i], out("step")(i) + ".wav"] }, { _ in .null }))
        cases.append(("WAV, block", { i in ["run", "-q", "--mode", "block", modelPath, wavs[i], out("block")(i) + ".wav"] }, { _ in .null }))
        // Models in series: the chain's stages one after another through the link buffers.
        let chained = dir.file("chain.safetensors")
        expectExit(try runCLI(["chain", "-q", Self.designed, modelPath, "-o", chained]), 0)
        for mode in ["step", "block"] {
            cases.append(("chain, \(mode)", { i in ["run", "-q", "--mode", mode, chained, wavs[i], out("chain" + mode)(i) + ".wav"] }, { _ in .null }))
        }
        // Many streams in step mode (one StreamBatch, each weight read once per frame for all four):
        // a 4-channel WAV through the S5 stack, --per-channel.
        let s5 = dir.file("s5-4x64.safetensors")
        expectExit(try runCLI(["init", "-q", packageRoot.appendingPathComponent("configs/architectures/s5-4x64.json").path, "-o", s5]), 0)
        let quads = try lengths.indices.map { i in
            let path = dir.file("quad\(i).wav"), x = signal(lengths[i])
            try writeWAV(path, channels: 4, format: AudioFormat.wav16, x.flatMap { [$0, -$0, 0.5 * $0, $0 * $0] })
            return path
        }
        cases.append(("4 streams per channel, step", { i in ["run", "-q", "--per-channel", "--mode", "step", s5, quads[i], out("quad")(i) + ".wav"] }, { _ in .null }))
        // Half-precision weights: the step's f16 kernels, one stream.
        let s5h = dir.file("s5-4x64-f16.safetensors")
        expectExit(try runCLI(["convert", "-q", s5, "--weights", "f16", "-o", s5h]), 0)
        cases.append(("f16 weights, step", { i in ["run", "-q", "--mode", "step", s5h, wavs[i], out("f16")(i) + ".wav"] }, { _ in .null }))
        let raws = try wavs.map { try Array([UInt8](Data(contentsOf: URL(fileURLWithPath: $0)))[44...]) }
        let raw = ["run", "-q", Self.designed, "-", "-", "--input-format", "s16le", "--rate", "16000", "--channels", "1"]
        cases.append(("raw stdin → stdout", { _ in raw }, { i in .bytes(raws[i]) }))
        func csv(_ x: [Float]) -> String { "a,b\n" + x.map { "\($0),\(-$0)" }.joined(separator: "\n") + "\n" }
        let csvs = try lengths.indices.map { i in
            let path = dir.file("in\(i).csv")
            try csv(signal(lengths[i], rate: 8000)).write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let text = ["--per-channel", "--resample", "--rate", "8000", "--mode", "block"]
        cases.append(("text, per channel, resampled", { i in ["run", "-q", Self.designed, csvs[i], out("text")(i) + ".csv"] + text }, { _ in .null }))
        let cls = try passThroughClassifier(dir, rate: 16000)
        let ev = ["--threshold", "0.3", "--posteriors", "1000"]
        cases.append(("classifier events", { i in ["run", "-q", cls, wavs[i], out("events")(i) + ".jsonl"] + ev }, { _ in .null }))
        // Every family's per-sample path, step and block: the architectures shipped in configs/.
        for arch in ["mamba-2x64", "griffin-64", "h3-64", "s4d-classifier", "s4d-bank-classifier"] {
            let model = dir.file(arch + ".safetensors")
            expectExit(try runCLI(["init", "-q", packageRoot.appendingPathComponent("configs/architectures/\(arch).json").path,
                                   "-o", model]), 0)
            for mode in ["step", "block"] {
                cases.append(("\(arch), \(mode)", { i in ["run", "-q", "--mode", mode, model, wavs[i], out(arch + mode)(i) + ".wav"] }, { _ in .null }))
            }
        }
        // The shipped digit classifier: S4D channels of 4 and 8 lanes (the packed and paired paths).
        let digits = packageRoot.appendingPathComponent("models/digits.safetensors").path
        for mode in ["step", "block"] {
            cases.append(("digits, \(mode)", { i in ["run", "-q", "--mode", mode, "--resample", digits, wavs[i], out("digits" + mode)(i) + ".jsonl"] },
                          { _ in .null }))
        }
        let blocks = lengths.map { $0 * 16000 / 256 }
        for (name, args, input) in cases {
            let counts = try lengths.indices.map { i in Double(try allocations(args(i), shim: shim, dir: dir, stdin: input(i))) }
            #expect(counts[0] > 100, "\(name): the shim counted \(counts[0]) allocations; is it loaded?")
            let slope = leastSquaresSlope(blocks, counts)
            #expect(slope < 0.1, "\(name): \(slope) allocations per block (counts \(counts.map { Int($0) }) for \(lengths) s)")
        }
    }
}

@Suite("ssm-streamd: allocations per block")
struct DaemonAllocationTests {
    @Test("the release daemon's heap allocations do not grow with the stream (slope over 1, 10 and 40 s of a looped file): filter in step and block mode, a classifier with events")
    func steadyState() throws {
        try #require(FileManager.default.isExecutableFile(atPath: releaseDaemon.path),
                     "no release build at \(releaseDaemon.path): run ./test.sh, or swift build -c release --product ssm-streamd")
        let dir = TempDir()
        let shim = try buildShim(dir)
        let tone: [Float] = (0..<16000).map { i in
            let s = 0.4 * sin(2 * Double.pi * 440 * Double(i) / 16000)
            return Float(s) + Float((i * 7919) % 1000) * 1e-4
        }
        try writeWAV(dir.file("in.wav"), format: AudioFormat.wav16, tone)
        let cls = try passThroughClassifier(dir, rate: 16000)
        let lengths: [Double] = [1, 10, 40]
        let cases: [(String, String, String)] = [
            ("filter, step", AllocationTests.designed, "mode = \"step\"\n"),
            ("filter, block", AllocationTests.designed, ""),
            ("classifier", cls, ""),
        ]
        for (name, model, extra) in cases {
            var counts: [Double] = [], engine: [Double] = []
            for (i, seconds) in lengths.enumerated() {
                let output = model == cls ? "" : "[output]\ntype = \"file\"\npath = \"out\(i).wav\"\n"
                let cfg = try writeConfig(dir, """
                model = "\(model)"
                \(extra)
                [source]
                type = "file"
                path = "in.wav"
                loop = true
                duration = \(seconds)
                \(output)
                [events]
                threshold = 0.3
                journal = false
                [control]
                socket = ""
                [log]
                target = "stderr"
                stats_interval = 0
                """)
                let countFile = dir.file("count-\(name.filter(\.isLetter))-\(i)")
                let d = try RunningDaemon(["-c", cfg], environment: ["LD_PRELOAD": shim, "SSM_MALLOC_COUNT": countFile,
                                                                     "SSM_MALLOC_THREAD": "ssm-engine", "OPENBLAS_NUM_THREADS": "1"],
                                          executable: releaseDaemon)
                let r = d.wait(timeout: 120)
                #expect(r.status == 0, "\(name): \(r.stderr)")
                let text = try String(contentsOfFile: countFile, encoding: .utf8)
                let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
                try #require(fields.count == 2, "\(text)")
                counts.append(fields[0]); engine.append(fields[1])
            }
            #expect(counts[0] > 100, "\(name): the shim counted \(counts[0]) allocations; is it loaded?")
            let blocks = lengths.map { $0 * 16000 / 256 }
            // The engine thread: nothing per block, whatever the stream holds.
            let slope = leastSquaresSlope(blocks, engine)
            #expect(slope < 0.1, "\(name): \(slope) allocations per block on the engine thread (counts \(engine.map { Int($0) }) for \(lengths) s)")
            // The whole process too when no events are reported (each event is formatted and sent
            // by the main thread, which may allocate for it).
            let all = leastSquaresSlope(blocks, counts)
            if model != cls {
                #expect(all < 0.1, "\(name): \(all) allocations per block in the process (counts \(counts.map { Int($0) }) for \(lengths) s)")
            } else {
                // Hundreds of events a second: the process allocates for them, the engine thread
                // does not (which also shows the per-thread count tells the threads apart).
                #expect(all > 1, "\(name): \(all) allocations per block in the process: were events reported?")
            }
        }
    }
}
