import SSM

/// Runs a model over interleaved frames, as the daemon and `ssm-stream run` both do: either the
/// frame's channels are the model's inputs, or (per-channel) the frame holds `groups` independent
/// streams of `d_input` channels each, every one with its own recurrent state. In step mode the
/// groups are one `StreamBatch` (a frame is its (groups, d_input) input as it stands); in block mode
/// each group's block runs on its own.
///
/// Shapes: input frames (T, groups·d_input) → output frames (T, groups·d_output), interleaved.
/// All buffers and states are allocated at init; `process` allocates nothing.
public final class StreamEngine {
    public enum Mode: String, Sendable, CaseIterable {
        /// One sample at a time (`Model.step`).
        case step
        /// The block scan (`Model.forward`): the same numbers to float round-off, faster.
        case block
    }

    public let model: Model
    public let groups: Int
    public let mode: Mode
    public let maxFrames: Int
    private let states: [ModelState]
    /// Step mode with several streams: one `StreamBatch` (each weight read once per frame for all
    /// of them); `states` are then its per-stream views.
    private let batch: StreamBatch?
    private let gatherIn: UnsafeMutablePointer<Float>
    private let gatherOut: UnsafeMutablePointer<Float>
    private let dIn: Int, dOut: Int

    public init(model: Model, groups: Int = 1, mode: Mode, maxFrames: Int) {
        self.model = model; self.groups = groups; self.mode = mode; self.maxFrames = maxFrames
        dIn = model.spec.dInput; dOut = model.spec.dOutput
        if groups > 1 && mode == .step {
            let b = model.makeBatch(streams: groups)
            batch = b; states = b.states
        } else {
            batch = nil
            states = (0..<groups).map { _ in model.makeState(maxBlock: maxFrames) }
        }
        let split = groups > 1 && mode == .block
        gatherIn = .allocate(capacity: split ? maxFrames * dIn : 1)
        gatherOut = .allocate(capacity: split ? maxFrames * dOut : 1)
    }

    deinit { gatherIn.deallocate(); gatherOut.deallocate() }

    public var inputChannels: Int { groups * dIn }
    public var outputChannels: Int { groups * dOut }
    /// Recurrent state of all streams, in bytes (fixed: independent of how long the stream runs).
    public var stateBytes: Int { states.reduce(0) { $0 + $1.stateBytes } }

    /// Pushes `frames` ≤ `maxFrames` frames through the model(s), then guards the output: a
    /// NaN/Inf leaving the model (it overflowed) is replaced by 0, and the stream it came from
    /// goes back to the zero state so that it can recover. Returns the number of values replaced.
    @discardableResult
    public func process(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, frames: Int) -> Int {
        run(x, y, frames: frames)
        let dOut = self.dOut, outStride = groups * dOut
        var replaced = 0
        for g in 0..<groups {
            var bad = 0
            for k in 0..<frames {
                let row = y + k * outStride + g * dOut
                for j in 0..<dOut where !row[j].isFinite { row[j] = 0; bad += 1 }
            }
            if bad > 0 { states[g].reset(); replaced += bad }
        }
        return replaced
    }

    private func run(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, frames: Int) {
        let dIn = self.dIn, dOut = self.dOut
        let inStride = groups * dIn, outStride = groups * dOut
        switch mode {
        case .step:
            // Several groups: a frame is (groups, d_input) row-major, exactly the batch's X.
            let model = self.model
            if let batch {
                for k in 0..<frames { model.step(x + k * inStride, y + k * outStride, batch: batch) }
            } else {
                let state = states[0]
                for k in 0..<frames { model.step(x + k * dIn, y + k * dOut, state: state) }
            }
        case .block where groups == 1:
            model.forward(x, y, length: frames, state: states[0])
        case .block:
            for g in 0..<groups {
                for k in 0..<frames {
                    (gatherIn + k * dIn).update(from: x + k * inStride + g * dIn, count: dIn)
                }
                model.forward(gatherIn, gatherOut, length: frames, state: states[g])
                for k in 0..<frames {
                    (y + k * outStride + g * dOut).update(from: gatherOut + k * dOut, count: dOut)
                }
            }
        }
    }

    /// Back to the zero state (a new stream).
    public func reset() { for s in states { s.reset() } }
}
