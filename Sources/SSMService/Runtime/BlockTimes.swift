import CSupport

/// How long the engine took per block over the last minute: p50, p99 and max, for `status` and
/// the metrics file. The engine thread records each block (a few relaxed atomic adds into
/// preallocated memory: no lock, no allocation); the main thread reads whenever it likes.
///
/// Layout: `slots` ring slots of `slotSeconds` each (6 × 10 s: the last minute), each a histogram
/// of log-spaced bins (8 per octave from 1 µs: ≤ 9 % relative resolution, up to ~4.6 h) plus its
/// count and maximum; a slot is cleared by the engine when its 10 s come round again. A reader
/// that races a clear sees a slot partly cleared: figures for monitoring, not for accounting.
public final class BlockTimes: @unchecked Sendable {
    public static let slots = 6
    public static let slotNanos = 10_000_000_000
    static let perOctave = 8
    static let bins = 1 + 34 * perOctave
    /// Per slot: bins, then count, max (ns), busy time (ns) and frames.
    private static let stride = bins + 4
    private let storage: UnsafeMutablePointer<Int>
    /// Per slot: the 10-s period it holds (monotonic ns / slotNanos), -1 before its first.
    private let periods: UnsafeMutablePointer<Int>

    public init() {
        storage = .allocate(capacity: Self.slots * Self.stride)
        storage.initialize(repeating: 0, count: Self.slots * Self.stride)
        periods = .allocate(capacity: Self.slots)
        periods.initialize(repeating: -1, count: Self.slots)
    }

    deinit { storage.deallocate(); periods.deallocate() }

    /// The bin of a duration: 0 below 1 µs, then 8 per octave.
    @inline(__always)
    static func bin(_ nanos: Int) -> Int {
        let us = nanos / 1000
        guard us >= 1 else { return 0 }
        // nanos / 1000 ∈ [2^octave, 2^(octave+1)); the eighth of that octave it falls in.
        let octave = Int.bitWidth - 1 - us.leadingZeroBitCount
        guard octave < 34 else { return bins - 1 }
        let sub = nanos * perOctave / (1000 << octave) - perOctave
        return min(bins - 1, 1 + octave * perOctave + sub)
    }

    /// A duration representative of a bin (its middle), in seconds.
    static func seconds(ofBin b: Int) -> Double {
        guard b > 0 else { return 0.5e-6 }
        let octave = (b - 1) / perOctave, sub = (b - 1) % perOctave
        return 1e-6 * Double(1 << octave) * (1 + (Double(sub) + 0.5) / Double(perOctave))
    }

    /// The engine thread: one block of `frames` input frames took `nanos`, ending at monotonic
    /// time `now` (ns).
    @inline(__always)
    public func record(nanos: Int, frames: Int, now: Int) {
        let period = now / Self.slotNanos, i = period % Self.slots
        let slot = storage + i * Self.stride
        if ssm_atomic_load(periods + i) != period {
            for j in 0..<Self.stride { ssm_atomic_store(slot + j, 0) }
            ssm_atomic_store(periods + i, period)
        }
        ssm_atomic_add(slot + Self.bin(nanos), 1)
        ssm_atomic_add(slot + Self.bins, 1)
        if ssm_atomic_load(slot + Self.bins + 1) < nanos { ssm_atomic_store(slot + Self.bins + 1, nanos) }
        ssm_atomic_add(slot + Self.bins + 2, nanos)
        ssm_atomic_add(slot + Self.bins + 3, frames)
    }

    public struct Summary: Sendable, Equatable {
        public var blocks: Int
        public var p50: Double, p99: Double, max: Double   // seconds
        /// Engine time and input frames of those blocks.
        public var busy: Double, frames: Int
    }

    /// Blocks of the last minute (up to `now`): nil if there were none.
    public func summary(now: Int) -> Summary? {
        let period = now / Self.slotNanos
        var hist = [Int](repeating: 0, count: Self.bins)
        var count = 0, maxNanos = 0, busy = 0, frames = 0
        for i in 0..<Self.slots {
            let p = ssm_atomic_load(periods + i)
            guard p >= 0, period - p < Self.slots else { continue }
            let slot = storage + i * Self.stride
            for b in 0..<Self.bins { hist[b] += ssm_atomic_load(slot + b) }
            count += ssm_atomic_load(slot + Self.bins)
            maxNanos = max(maxNanos, ssm_atomic_load(slot + Self.bins + 1))
            busy += ssm_atomic_load(slot + Self.bins + 2)
            frames += ssm_atomic_load(slot + Self.bins + 3)
        }
        let total = hist.reduce(0, +)
        guard total > 0 else { return nil }
        func quantile(_ q: Double) -> Double {
            let rank = Int((q * Double(total)).rounded(.up))
            var seen = 0
            for b in 0..<Self.bins {
                seen += hist[b]
                if seen >= max(rank, 1) { return min(Self.seconds(ofBin: b), Double(maxNanos) * 1e-9) }
            }
            return Double(maxNanos) * 1e-9
        }
        return Summary(blocks: max(count, total), p50: quantile(0.5), p99: quantile(0.99), max: Double(maxNanos) * 1e-9,
                       busy: Double(busy) * 1e-9, frames: frames)
    }
}
