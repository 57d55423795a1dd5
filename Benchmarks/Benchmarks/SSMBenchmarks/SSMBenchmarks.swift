// Per-family layer benchmarks next to the C references of the same arithmetic, in one run.
// Every iteration processes one block of 256 samples (divide the time by 256 for ns/sample);
// `Malloc (total)` must be 0 for every step and block benchmark: the hot paths allocate nothing.
// Layers are built inside each benchmark (before `startMeasurement`), so a run filtered to a few
// benchmarks builds only those.
import Benchmark
import CReference
import SSM

let samplesPerIteration = 256

func layer(_ family: Family, _ size: Int, P: Int? = nil) -> LayerBench {
    guard let b = try? LayerBench(family: family, H: size, P: P ?? size, block: samplesPerIteration) else {
        fatalError("cannot build a \(family) layer at \(size)")
    }
    return b
}

/// Before a C reference is timed: one block of samples from the zero state through the Swift step
/// and through the C step on the same weights must agree (max |C − Swift| / max |Swift| ≤ 1e-5);
/// the benchmark stops otherwise. Leaves the layer's state at zero.
func checkAgainstSwift(_ name: String, _ b: LayerBench, cStateCount: Int,
                       _ cStep: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    let n = samplesPerIteration * b.H
    b.state.update(repeating: 0, count: b.layer.stateCount)
    b.runSteps()
    let swiftOut = Array(UnsafeBufferPointer(start: b.output, count: n))
    b.output.update(repeating: .nan, count: n)   // every output must come from the C step
    let cState = UnsafeMutablePointer<Float>.allocate(capacity: cStateCount)
    cState.initialize(repeating: 0, count: cStateCount)
    for k in 0..<samplesPerIteration { cStep(cState, b.input + k * b.H, b.output + k * b.H) }
    cState.deallocate()
    var err: Float = 0, scale: Float = 0
    for i in 0..<n {
        let d = abs(b.output[i] - swiftOut[i])
        if !(d <= err) { err = d }
        scale = max(scale, abs(swiftOut[i]))
    }
    let rel = err / max(scale, .leastNormalMagnitude)
    guard rel <= 1e-5 else { fatalError("\(name): C and Swift disagree (relative error \(rel))") }
    print("\(name): C reference matches the Swift step (max relative difference \(rel) over \(samplesPerIteration) samples)")
    b.state.update(repeating: 0, count: b.layer.stateCount)
}

/// The C Mamba mixer over the Swift layer's own weights.
func cMamba(_ b: LayerBench) -> cref_mamba {
    guard case .mamba(let l) = b.layer else { fatalError("not a mamba layer") }
    let w = l.weights
    return cref_mamba(H: Int32(l.dModel), E: Int32(l.E), N: Int32(l.N), R: Int32(l.R), d_conv: Int32(l.dConv),
                      in_w: w.inProj, conv_w: w.conv, conv_b: w.convBias, x_w: w.xProj, dt_w: w.dtProj,
                      dt_b: w.dtBias, A: w.A, D: w.D, out_w: w.outProj)
}

/// The C Hawk block over the Swift layer's own weights.
func cHawk(_ b: LayerBench) -> cref_hawk {
    guard case .hawk(let l) = b.layer else { fatalError("not a hawk layer") }
    let w = l.weights
    return cref_hawk(H: Int32(l.dModel), W: Int32(l.width), heads: Int32(l.heads), taps: Int32(l.taps),
                     x_w: w.linearX, x_b: w.linearXBias, y_w: w.linearY, y_b: w.linearYBias,
                     out_w: w.linearOut, out_b: w.linearOutBias, conv_w: w.conv, conv_b: w.convBias,
                     a_gate_w: w.aGate, a_gate_b: w.aGateBias, in_gate_w: w.inputGate, in_gate_b: w.inputGateBias,
                     log_decay: w.logDecay)
}

/// Step and block benchmarks of one Swift layer.
func layerBenchmarks(_ label: String, _ make: @escaping @Sendable () -> LayerBench) {
    Benchmark("\(label) step") { benchmark in
        let bench = make()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { bench.runSteps() }
        blackHole(bench.output[0])
    }
    Benchmark("\(label) block\(samplesPerIteration)") { benchmark in
        let bench = make()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { bench.runBlock() }
        blackHole(bench.output[0])
    }
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

    // The issue-3 performance bar: the Mamba block (d_model 64, d_state 16, expand 2) and the Hawk
    // block (d_model 64, lru_width 64) steps against plain-C references of the same arithmetic on
    // the same weights (CReference/cref_mamba.c, cref_hawk.c), side by side in this one process.
    layerBenchmarks("Mamba d_model=64 N=16 E=128") { layer(.mamba, 64, P: 16) }
    Benchmark("Mamba step d_model=64 N=16 E=128 (C reference)") { benchmark in
        let b = layer(.mamba, 64, P: 16)
        var m = cMamba(b)
        let stateCount = Int(cref_mamba_state_count(&m))
        let state = UnsafeMutablePointer<Float>.allocate(capacity: stateCount)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Int(cref_mamba_scratch_count(&m)))
        state.initialize(repeating: 0, count: stateCount)
        withUnsafePointer(to: m) { mp in
            checkAgainstSwift("Mamba", b, cStateCount: stateCount) { st, u, y in cref_mamba_step(mp, st, scratch, u, y) }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for k in 0..<samplesPerIteration { cref_mamba_step(mp, state, scratch, b.input + k * 64, b.output + k * 64) }
            }
            benchmark.stopMeasurement()
        }
        blackHole(b.output[0])
        state.deallocate(); scratch.deallocate()
    }
    layerBenchmarks("Hawk d_model=64 W=64") { layer(.hawk, 64) }
    Benchmark("Hawk step d_model=64 W=64 (C reference)") { benchmark in
        let b = layer(.hawk, 64)
        var m = cHawk(b)
        let stateCount = Int(cref_hawk_state_count(&m))
        let state = UnsafeMutablePointer<Float>.allocate(capacity: stateCount)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Int(cref_hawk_scratch_count(&m)))
        state.initialize(repeating: 0, count: stateCount)
        withUnsafePointer(to: m) { mp in
            checkAgainstSwift("Hawk", b, cStateCount: stateCount) { st, u, y in cref_hawk_step(mp, st, scratch, u, y) }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                for k in 0..<samplesPerIteration { cref_hawk_step(mp, state, scratch, b.input + k * 64, b.output + k * 64) }
            }
            benchmark.stopMeasurement()
        }
        blackHole(b.output[0])
        state.deallocate(); scratch.deallocate()
    }

    // S4 (DPLR) at H = 64, N = 64 and the RG-LRU alone at the issue-2 sizes.
    layerBenchmarks("s4 H=64 N=64") { layer(.s4, 64) }
    for size in [16, 64, 256] { layerBenchmarks("rglru H=W=\(size)") { layer(.rglru, size) } }

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
