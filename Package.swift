// swift-tools-version: 6.1
import PackageDescription
#if canImport(Glibc)
import Glibc
#endif

/// The scan core lives on explicit SIMD (SIMD8<Float> with fused multiply-add). Swift compiles for
/// baseline x86-64 (SSE2, no FMA) by default, where `addingProduct` becomes a libm call per lane; so on
/// an x86-64 build host with AVX2+FMA we target Haswell-class CPUs, and on one with AVX-512 (F, BW,
/// DQ, VL) Skylake-AVX512-class CPUs, where the dense kernels (`vecMat`, `rowsMat`) also run 16 lanes
/// wide (SSM_SIMD512). `SSM_TARGET_CPU=x86-64` (or any CPU name swiftc knows, assumed to have FMA;
/// 16 lanes for the names in `avx512CPUs`) overrides it, e.g. to build for an older machine.
func targetCPUFlags() -> [String] {
    #if arch(x86_64)
    let avx512CPUs: Set<String> = ["skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
                                   "icelake-server", "rocketlake", "tigerlake", "sapphirerapids", "emeraldrapids",
                                   "graniterapids", "graniterapids-d", "diamondrapids", "znver4", "znver5"]
    func flags(_ cpu: String) -> [String] {
        ["-target-cpu", cpu, "-DSSM_TARGET_CPU_FMA"] + (avx512CPUs.contains(cpu) ? ["-DSSM_SIMD512"] : [])
    }
    if let cpu = Context.environment["SSM_TARGET_CPU"], !cpu.isEmpty {
        return cpu == "x86-64" ? [] : flags(cpu)
    }
    #if canImport(Glibc)
    if let f = fopen("/proc/cpuinfo", "r") {
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 8192)
        while fgets(&line, Int32(line.count), f) != nil {
            let s = String(decoding: line.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if s.hasPrefix("flags") {
                let has = Set(s.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
                if has.isSuperset(of: ["avx512f", "avx512bw", "avx512dq", "avx512vl", "fma"]) { return flags("skylake-avx512") }
                return has.contains("avx2") && has.contains("fma") ? flags("haswell") : []
            }
        }
    }
    #endif
    #endif
    return []
}

/// SSM_FLOAT64=1 (scripts/gradcheck.sh): the numeric library and the trainer in float64 (`Scalar =
/// Double`), with only the gradient checks, to take finite differences of the product's own code.
let float64 = Context.environment["SSM_FLOAT64"] == "1"
let precisionFlags: [SwiftSetting] = float64 ? [.define("SSM_FLOAT64")] : []

/// SSM_FUZZ=1 (scripts/fuzz.sh): every target instrumented for libFuzzer's coverage and ASan.
let fuzzing = Context.environment["SSM_FUZZ"] == "1"
let fuzzFlags: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"])] : []

/// The numeric library: -Ounchecked in release (no overflow or bounds traps in the kernels).
let fast: [SwiftSetting] = [.unsafeFlags(targetCPUFlags()), .unsafeFlags(["-Ounchecked"], .when(configuration: .release))] + fuzzFlags + precisionFlags
/// I/O, the daemon and the executables: checked -O, so a broken invariant traps instead of being
/// assumed away (under -Ounchecked a precondition's condition is not even evaluated: a
/// `precondition(pipe(&fds) == 0)` once left the daemon without its signal pipe).
let checked: [SwiftSetting] = [.unsafeFlags(targetCPUFlags())] + fuzzFlags

let package = Package(
    name: "ssm-stream",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SSM", targets: ["SSM"]),
        .executable(name: "ssm-stream", targets: ["ssm-stream"]),
        .executable(name: "ssm-streamd", targets: ["ssm-streamd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libsndfile1-dev, libasound2-dev, libsystemd-dev,
        // libsamplerate0-dev).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSndfile", pkgConfig: "sndfile",
                       providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CALSA", pkgConfig: "alsa",
                       providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CSamplerate", pkgConfig: "samplerate",
                       providers: [.apt(["libsamplerate0-dev"])]),
        // printf-style number formatting without allocation (snprintf is variadic).
        .target(name: "CSupport"),

        .target(name: "SSM", dependencies: [
            "COpenBLAS", .product(name: "Numerics", package: "swift-numerics"),
        ], swiftSettings: fast),
        .target(name: "SSMTrain", dependencies: ["SSM", .product(name: "Numerics", package: "swift-numerics")], swiftSettings: fast),
        .target(name: "SSMIO", dependencies: ["SSM", "CSndfile", "CALSA", "CSamplerate", "CSupport"], swiftSettings: checked),
        // The one streaming path `run` and the daemon share (engine, resamplers, classifier, rings).
        .target(name: "SSMStreaming", dependencies: ["SSM", "SSMIO"], swiftSettings: checked),
        .target(name: "SSMService", dependencies: ["SSM", "SSMIO", "SSMStreaming", "CSystemd", "CSupport"], swiftSettings: checked),
        .executableTarget(name: "ssm-stream", dependencies: [
            "SSM", "SSMIO", "SSMStreaming", "SSMService", "SSMTrain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: checked),
        .executableTarget(name: "ssm-streamd", dependencies: [
            "SSM", "SSMService",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: checked),
        .testTarget(name: "SSMTests", dependencies: ["SSM"], swiftSettings: fast),
        .testTarget(name: "SSMIOTests", dependencies: ["SSMIO", "SSM"]),
        .testTarget(name: "SSMStreamingTests", dependencies: ["SSMStreaming", "SSMIO", "SSM"]),
        .testTarget(name: "SSMServiceTests", dependencies: ["SSMService", "SSMStreaming", "SSMIO", "SSM"]),
        .testTarget(name: "CLITests", dependencies: ["SSMIO", "SSM"]),
        .testTarget(name: "GradientTests", dependencies: ["SSM", "SSMTrain"], swiftSettings: fast),
        .testTarget(name: "SSMTrainTests", dependencies: ["SSM", "SSMTrain"], swiftSettings: fast),
    ]
)

// The float64 build keeps the numeric targets and the gradient checks only (the I/O, the service and
// the executables are float32 code).
if float64 {
    let keep: Set<String> = ["COpenBLAS", "SSM", "SSMTrain", "GradientTests"]
    package.targets.removeAll { !keep.contains($0.name) }
    package.products.removeAll { $0.name != "SSM" }
}

// The libFuzzer harness (Fuzz/ssm-fuzz): only with SSM_FUZZ=1, as scripts/fuzz.sh builds it
// (`--sanitize=fuzzer --sanitize=address`, libFuzzer supplies `main`; a plain build would not link).
if fuzzing {
    package.targets.append(.executableTarget(name: "ssm-fuzz", dependencies: ["SSM", "SSMIO", "SSMStreaming", "SSMService"],
                                             path: "Fuzz/ssm-fuzz", swiftSettings: checked + [.unsafeFlags(["-parse-as-library"])],
                                             linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]))
}
