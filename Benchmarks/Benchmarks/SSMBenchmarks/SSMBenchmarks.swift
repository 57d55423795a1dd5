// Per-family layer benchmarks next to the C references of the same arithmetic, in one run.
// Every iteration processes one block of 256 samples (divide the time by 256 for ns/sample);
// `Malloc (total)` must be 0 for every step and block benchmark: the hot paths allocate nothing.
// Layers are built inside each benchmark (before `startMeasurement`), so a run filtered to a few
// benchmarks builds only those.
import Benchmark
import CReference
import SSM

let samplesPerIteration = 256

func layer(_ family: Family, _ size: Int) -> LayerBench {
    guard let b = try? LayerBench(family: family, H: size, P: size, block: samplesPerIteration) else {
        fatalError("cannot build a \(family) layer at \(size)")
    }
    return b
}

let benchmarks: @Sendable () -> Void = {
    setBLASThreads(1)
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 5,
        maxDuration: .seconds(1),
        maxIterations: 2_000
    )

    // The harness's own allocations per iteration, to read the others against (expected 0).
    Benchmark("baseline: empty iteration") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(0) }
    }

    for size in [16, 64, 256] {
        for family in [Family.s4d, .s5, .lru] {
            Benchmark("\(family.rawValue) step H=P=\(size)") { benchmark in
                let bench = layer(family, size)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { bench.runSteps() }
                blackHole(bench.output[0])
            }
            Benchmark("\(family.rawValue) block\(samplesPerIteration) H=P=\(size)") { benchmark in
                let bench = layer(family, size)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations { bench.runBlock() }
                blackHole(bench.output[0])
            }
        }

        // The C references run the S5 layer's own weights (same layout, same arithmetic).
        Benchmark("C reference step H=P=\(size)") { benchmark in
            let s5 = layer(.s5, size)
            guard case .diagonal(let l) = s5.layer else { fatalError("s5 is diagonal") }
            let w = l.weights
            let state = UnsafeMutablePointer<Float>.allocate(capacity: 2 * size)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * size)
            state.initialize(repeating: 0, count: 2 * size)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for k in 0..<samplesPerIteration {
                    cref_step(Int32(size), Int32(size), w.lambda, w.lambda + size, w.b, w.c, w.d, state, scratch,
                              s5.input + k * size, s5.output + k * size)
                }
            }
            benchmark.stopMeasurement()
            blackHole(s5.output[0])
            state.deallocate(); scratch.deallocate()
        }
        Benchmark("C reference block\(samplesPerIteration) (OpenBLAS) H=P=\(size)") { benchmark in
            let s5 = layer(.s5, size)
            guard case .diagonal(let l) = s5.layer else { fatalError("s5 is diagonal") }
            let w = l.weights
            let state = UnsafeMutablePointer<Float>.allocate(capacity: 2 * size)
            let X = UnsafeMutablePointer<Float>.allocate(capacity: samplesPerIteration * 2 * size)
            state.initialize(repeating: 0, count: 2 * size)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                cref_block(Int32(size), Int32(size), Int32(samplesPerIteration), w.lambda, w.lambda + size, w.b, w.c, w.d,
                           state, X, s5.input, s5.output)
            }
            benchmark.stopMeasurement()
            blackHole(s5.output[0])
            state.deallocate(); X.deallocate()
        }
    }
}
