import ArgumentParser
import FoundationEssentials
import SSM
#if canImport(Glibc)
import Glibc
#endif

struct Design: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Design a classical IIR filter or an audio EQ, or realize a user's state space / transfer function, as a modal (diagonal) state-space model file.",
        discussion: """
        Butterworth, Chebyshev I and II, elliptic (Cauer) and Bessel low-pass, high-pass, \
        band-pass and band-stop filters, designed in double precision exactly as \
        scipy.signal.iirfilter does (analog prototype, pre-warped cutoffs, zpk transformation, \
        bilinear transform), then split into partial fractions H(z) = Σ r_i/(1 − p_i z⁻¹) + k: \
        one S5 lane per conjugate pole pair or real pole, discretization "none". `ssm-stream run` \
        applies the result through the scan core; it equals the second-order-sections filter of \
        the same design to float32 accuracy.

        Band-pass and band-stop designs have 2·order poles. --cutoff2 is the upper band edge; \
        --ripple (dB) is the pass-band ripple (chebyshev1, elliptic), --attenuation (dB) the \
        stop-band attenuation (chebyshev2, elliptic). --cutoff is where scipy puts it: the \
        pass-band edge (Butterworth: −3 dB), the stop-band edge for chebyshev2, and for bessel \
        (phase-normalized, scipy's default) where the phase is half its asymptote.

        Audio EQ biquads (RBJ cookbook): peaking, lowshelf, highshelf, notch and allpass, at \
        --cutoff HZ (centre or shelf midpoint), with --gain DB (peaking, shelves) and --q or \
        --bandwidth OCTAVES (default Q 0.707). `eq` puts several sections in series in one \
        model, each --section KIND:HZ[:GAIN][:Q | :bw=OCTAVES] (a gain only for peaking and \
        shelves).

        `statespace FILE` realizes a JSON file holding a state space {"a","b","c","d"} or a \
        transfer function {"num","den"}, discrete or continuous ("domain"), with "discretization" \
        bilinear|zoh for continuous systems and "rate" in Hz (or --rate); see the README.

        Refused: order outside 1…32, cutoffs outside (0, rate/2), cutoff2 ≤ cutoff (64); \
        unstable, repeated (defective) or z = 0 poles, numerators longer than denominators, \
        a bad JSON file (65); a missing file (66); an unwritable output (73).

        Examples:
          ssm-stream design butterworth lowpass --order 8 --cutoff 1000 \\
              --rate 16000 -o lp.safetensors
          ssm-stream design chebyshev1 bandpass --order 4 --cutoff 300 \\
              --cutoff2 3400 --ripple 1 --rate 16000 -o bp.safetensors
          ssm-stream design butterworth highpass --order 2 --cutoff 80 \\
              --rate 48000 -o hp.safetensors --json
          ssm-stream design elliptic lowpass --order 6 --cutoff 1000 \\
              --ripple 0.5 --attenuation 60 --rate 16000 -o ell.safetensors
          ssm-stream design peaking --cutoff 1000 --gain -6 --q 2 \\
              --rate 48000 -o cut.safetensors
          ssm-stream design eq --section lowshelf:120:4 \\
              --section peaking:2500:-3:1.4 --section highshelf:9000:2 \\
              --rate 48000 -o eq.safetensors
          echo '{"num": [0.2, 0.2], "den": [1, -0.6]}' > tf.json
          ssm-stream design statespace tf.json --rate 16000 -o tf.safetensors
          ssm-stream design butterworth highpass --order 2 --cutoff 100 \\
              --append-to lp.safetensors -o band.safetensors
          ssm-stream run lp.safetensors in.wav out.wav
        """)

    @Argument(help: "butterworth, chebyshev1, chebyshev2, elliptic, bessel, statespace; peaking, lowshelf, highshelf, notch, allpass; eq.")
    var kind: String

    @Argument(help: "lowpass, highpass, bandpass or bandstop; for statespace the JSON file; none for a biquad or eq.")
    var target: String?

    @Option(help: "Prototype order (1…32); band-pass and band-stop filters have twice as many poles.")
    var order: Int?

    @Option(help: "Cutoff in Hz (the lower band edge for bandpass/bandstop).")
    var cutoff: Double?

    @Option(help: "Upper band edge in Hz (bandpass, bandstop).")
    var cutoff2: Double?

    @Option(help: "Pass-band ripple in dB (chebyshev1, elliptic).")
    var ripple: Double?

    @Option(help: "Stop-band attenuation in dB (chebyshev2, elliptic).")
    var attenuation: Double?

    @Option(parsing: .unconditional, help: "Biquad gain in dB (peaking, lowshelf, highshelf; a cut is negative).")
    var gain: Double?

    @Option(help: "Biquad Q (default 0.707).")
    var q: Double?

    @Option(help: "Biquad bandwidth in octaves (peaking, notch, allpass), instead of --q.")
    var bandwidth: Double?

    @Option(help: "An eq section, KIND:HZ[:GAIN][:Q | :bw=OCTAVES] (repeatable, in series).")
    var section: [String] = []

    @Option(help: "Sample rate in Hz (for statespace: overrides the file's \"rate\").")
    var rate: Int?

    @Option(name: .shortAndLong, help: "Model file to write (.safetensors).")
    var output: String

    @Option(name: .customLong("append-to"), help: "Put the design after this model: -o gets MODEL then the design, in series (--rate defaults to MODEL's).")
    var appendTo: String?

    @Flag(help: "Print the lanes (poles, B, C) and D as JSON on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "No summary on stderr.")
    var quiet = false

    mutating func run() throws {
        var base: (spec: ModelSpec, tensors: [String: Tensor])?
        if let appendTo {
            let file = try Chain.read(appendTo, command: "design")
            base = (file.spec, file.tensors)
            // A design's rate defaults to MODEL's; a state-space file keeps its own "rate" (a
            // mismatch is then refused by the chain, not relabelled).
            if rate == nil && kind != "statespace" { rate = base!.spec.sampleRate }
        }
        let system: ModalSystem, sampleRate: Int, what: String
        do {
            (system, sampleRate, what) = try realize()
        } catch let e as DesignError {
            warn("ssm-stream design: \(e.message)")
            throw ExitCode(e.kind == .usage ? ExitStatus.usage : ExitStatus.dataError)
        }
        let (spec, tensors) = ModalRealization.model(system, sampleRate: sampleRate,
                                                     description: "\(what), modal form (ssm-stream design)")
        // The loader is the judge: float32 rounding may push a pole onto the unit circle.
        do { _ = try Model(spec: spec, tensors: tensors) } catch {
            warn("ssm-stream design: the float32 model cannot be loaded: \(error.message) (poles too close to the unit circle for float32?)")
            throw ExitCode(ExitStatus.dataError)
        }
        if let base, let appendTo {
            try Chain.write([base, (spec, tensors)], to: output, command: "design", quiet: true, names: [appendTo, what])
        } else {
            do { try SafeTensors.write(ModelFile.serialize(spec: spec, tensors: tensors), toFile: output) } catch {
                warn("ssm-stream design: cannot write '\(output)': \(error.message)")
                throw ExitCode(ExitStatus.cantCreate)
            }
        }
        if json { print(lanesJSON(system, sampleRate: sampleRate)) }
        if !quiet {
            let poles = system.poles.count
            warn("ssm-stream design: \(what): \(poles) pole\(poles == 1 ? "" : "s") in \(system.lanes.count) lane\(system.lanes.count == 1 ? "" : "s"), "
                 + "max |p| = \(fixed(system.maxPoleMagnitude, 6)), float32 cancellation κ = \(fixed(system.cancellation, 1))"
                 + (appendTo.map { ", after the \(base!.spec.stageList.count) stage(s) of \($0)" } ?? "") + " → \(output)")
        }
    }

    /// The modal system, its rate and a one-line name of what was designed.
    func realize() throws -> (ModalSystem, Int, String) {
        let filterOnly = [("--order", order != nil), ("--cutoff", cutoff != nil), ("--cutoff2", cutoff2 != nil),
                          ("--ripple", ripple != nil), ("--attenuation", attenuation != nil)]
        let biquadOnly = [("--gain", gain != nil), ("--q", q != nil), ("--bandwidth", bandwidth != nil)]
        if kind == "statespace" {
            for (flag, given) in filterOnly + biquadOnly + [("--section", !section.isEmpty)] where given {
                throw DesignError(.usage, "\(flag) is for filter, biquad and eq designs, not statespace")
            }
            guard let target else { throw DesignError(.usage, "statespace needs the JSON file: design statespace FILE --rate HZ -o OUT") }
            let bytes: [UInt8]
            do { bytes = try readFile(target) } catch {
                warn("ssm-stream design: \(error.message)"); throw ExitCode(ExitStatus.noInput)
            }
            let user = try UserSystem.parse(bytes)
            let (s, r) = try StateSpaceRealization.realize(user, rateOverride: rate)
            let form = user.num != nil ? "transfer function" : "state space"
            let domain = (user.domain ?? .discrete) == .discrete ? "discrete" : "continuous, \((user.discretization ?? .bilinear).rawValue)"
            let note = user.description.map { ": \($0)" } ?? ""
            return (s, r, "\(form) '\(target)' (\(domain)) at \(r) Hz, \(s.inputs) in, \(s.outputs) out\(note)")
        }
        if kind == "eq" || Biquad.Kind(rawValue: kind) != nil {
            if let target { throw DesignError(.usage, "a \(kind) design takes no band ('\(target)'): its shape is its kind") }
            for (flag, given) in filterOnly where given && flag != "--cutoff" {
                throw DesignError(.usage, "\(flag) is for butterworth, chebyshev and elliptic designs, not biquads")
            }
            guard let rate else { throw DesignError(.usage, "missing --rate HZ") }
            let sections: [Biquad.Section]
            if let k = Biquad.Kind(rawValue: kind) {
                guard section.isEmpty else { throw DesignError(.usage, "--section is for eq designs: design eq --section \(kind):HZ…") }
                guard let cutoff else { throw DesignError(.usage, "missing --cutoff HZ (the \(kind)'s frequency)") }
                sections = [Biquad.Section(kind: k, frequency: cutoff, gainDB: gain, q: q, bandwidth: bandwidth)]
            } else {
                for (flag, given) in [("--cutoff", cutoff != nil)] + biquadOnly where given {
                    throw DesignError(.usage, "\(flag) is for a single biquad; an eq takes each section's values in --section")
                }
                guard !section.isEmpty else { throw DesignError(.usage, "an eq needs at least one --section KIND:HZ[:GAIN][:Q]") }
                sections = try section.map(Self.parseSection)
            }
            let zpk = try Biquad.design(sections, rate: Double(rate))
            let what = (sections.count == 1 ? "" : "eq of \(sections.count) sections: ") + sections.map(\.summary).joined(separator: "; ")
            return (try ModalRealization.realize(zpk), rate, "\(what) at \(rate) Hz")
        }
        guard let family = FilterDesign.Family(rawValue: kind) else {
            throw DesignError(.usage, "unknown design '\(kind)': use butterworth, chebyshev1, chebyshev2, elliptic, bessel, "
                              + "peaking, lowshelf, highshelf, notch, allpass, eq or statespace")
        }
        for (flag, given) in biquadOnly + [("--section", !section.isEmpty)] where given {
            throw DesignError(.usage, "\(flag) is for biquad and eq designs, not \(kind)")
        }
        guard let target else { throw DesignError(.usage, "missing the band: design \(kind) lowpass|highpass|bandpass|bandstop …") }
        guard let band = FilterDesign.Band(rawValue: target) else {
            throw DesignError(.usage, "unknown band '\(target)': use lowpass, highpass, bandpass or bandstop")
        }
        guard let order else { throw DesignError(.usage, "missing --order N") }
        guard let cutoff else { throw DesignError(.usage, "missing --cutoff HZ") }
        guard let rate else { throw DesignError(.usage, "missing --rate HZ") }
        let spec = FilterDesign.Spec(family: family, band: band, order: order, cutoff: cutoff, cutoff2: cutoff2,
                                     rippleDB: ripple, attenuationDB: attenuation, rate: Double(rate))
        return (try ModalRealization.realize(try FilterDesign.design(spec)), rate, spec.summary)
    }

    /// `KIND:HZ[:GAIN][:Q | :bw=OCTAVES]`; a gain only for peaking and shelves.
    static func parseSection(_ text: String) throws(DesignError) -> Biquad.Section {
        let f = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let form = "KIND:HZ[:GAIN][:Q | :bw=OCTAVES]"
        guard f.count >= 2, let kind = Biquad.Kind(rawValue: f[0]) else {
            throw DesignError(.usage, "--section '\(text)': expected \(form) with KIND one of "
                              + Biquad.Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        func number(_ s: String, _ what: String) throws(DesignError) -> Double {
            guard let v = Double(s), v.isFinite else { throw DesignError(.usage, "--section '\(text)': \(what) '\(s)' is not a number") }
            return v
        }
        var s = Biquad.Section(kind: kind, frequency: try number(f[1], "frequency"))
        var rest = Array(f.dropFirst(2))
        if kind == .peaking || kind == .lowshelf || kind == .highshelf {
            guard !rest.isEmpty else { throw DesignError(.usage, "--section '\(text)': a \(kind.rawValue) section needs a gain in dB (\(kind.rawValue):HZ:GAIN)") }
            s.gainDB = try number(rest.removeFirst(), "gain")
        }
        if let w = rest.first {
            if w.hasPrefix("bw=") { s.bandwidth = try number(String(w.dropFirst(3)), "bandwidth") } else { s.q = try number(w, "Q") }
            rest.removeFirst()
        }
        guard rest.isEmpty else { throw DesignError(.usage, "--section '\(text)': too many fields (expected \(form))") }
        return s
    }

    func lanesJSON(_ s: ModalSystem, sampleRate: Int) -> String {
        struct Lane: Encodable { var lambda: [Double]; var b: [[Double]]; var c: [[Double]] }
        struct Out: Encodable {
            var sample_rate: Int; var inputs: Int; var outputs: Int; var max_abs_pole: Double
            var lanes: [Lane]; var d: [[Double]]
        }
        let lanes = s.lanes.map { m in
            Lane(lambda: [m.lambda.real, m.lambda.imaginary], b: m.b.map { [$0.real, $0.imaginary] }, c: m.c.map { [$0.real, $0.imaginary] })
        }
        let out = Out(sample_rate: sampleRate, inputs: s.inputs, outputs: s.outputs, max_abs_pole: s.maxPoleMagnitude, lanes: lanes, d: s.d)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(out)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

struct FileError: Error { let message: String }

/// The bytes of a file (at most 64 MiB), or a message naming the path and the reason.
func readFile(_ path: String) throws(FileError) -> [UInt8] {
    guard let f = fopen(path, "rb") else { throw FileError(message: "cannot open '\(path)': \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n > 0 { out += buf[0..<n] }
        if out.count > 64 << 20 { throw FileError(message: "'\(path)' is larger than 64 MiB") }
        if n < buf.count {
            if ferror(f) != 0 { throw FileError(message: "cannot read '\(path)': \(String(cString: strerror(errno)))") }
            return out
        }
    }
}
