// swift-tools-version: 6.1
// Benchmarks live in their own package so the main build and `swift test` do not pay for
// package-benchmark and its dependencies. Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark
import PackageDescription
import Foundation

// A path dependency's identity is its directory name, which depends on where the repo is cloned.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

let package = Package(
    name: "ssm-stream-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The C references of the performance bar (see CReference/README.md).
        .target(
            name: "CReference",
            path: "CReference",
            exclude: ["bench_main.c", "bench_blocks.c", "Makefile", "README.md"],
            // As the Makefile: -ffp-contract=off so the C fuses exactly where the Swift code does (fmaf);
            // -fno-trapping-math -fno-math-errno change no result, they let the compiler if-convert and
            // vectorize the gate loops (LLVM assumes both for Swift).
            cSettings: [.unsafeFlags(["-O3", "-march=native", "-std=c11", "-ffp-contract=off",
                                      "-fno-trapping-math", "-fno-math-errno"])],
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        .executableTarget(
            name: "SSMBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SSM", package: rootIdentity),
                "CReference",
            ],
            path: "Benchmarks/SSMBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
