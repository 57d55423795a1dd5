import ArgumentParser
import Foundation
import SSM
import SSMStreaming
import SSMService
import SSMTrain

/// Set by SIGINT/SIGTERM during training; the loop checks it between steps.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (S4D, S5, LRU and the scaffolds) on recordings, with the scan core it streams with.",
        discussion: """
        DATA is a folder with one subfolder per class (recordings in any format libsndfile reads) or \
        a CSV manifest of path,label lines (classification) or noisy,clean lines (filters). Recordings \
        are mixed to mono and resampled to the architecture's sample_rate. Every option is also a key \
        of the --config TOML file (same names, '-' as '_'; paths relative to the file); flags override the file.

        Each epoch ends with a summary line (and a JSON line on stdout with --json), a checkpoint \
        (MODEL.ckpt unless --checkpoint) and, when validation improves, the model file MODEL. SIGINT \
        or SIGTERM saves a checkpoint and exits with 75; --resume continues from it exactly (it refuses \
        other options, save the thread count, averaging and event settings, and other data or noise).

        Exit codes: 0 done · 64 usage · 65 bad data (empty or single class, unreadable with --strict, \
        a rate refused by --strict-rate, a corrupt checkpoint) · 66 data or architecture missing · \
        67 the architecture does not fit the data or cannot be trained · 70 the loss became NaN/Inf \
        (the last good checkpoint is kept) · 73/74 a file cannot be written (the previous one stays \
        intact) · 75 interrupted (checkpoint saved).

        Examples:
          ssm-stream train --arch examples/train/tones.json --data tones/ \\
              -o tones.safetensors --epochs 8
          ssm-stream train --config examples/train/digits.toml --minutes 25
          ssm-stream train --arch a.json --data train.csv --val test.csv \\
              -o m.safetensors --resume m.safetensors.ckpt
        """)

    @Option(help: "Architecture JSON (or a model file, whose architecture and parameters are the start).")
    var arch: String?
    @Option(help: "Training data: a folder of class subfolders or a CSV manifest.")
    var data: String?
    @Option(help: "Validation data (otherwise --val-fraction or --val-pattern of DATA).")
    var val: String?
    @Option(name: .shortAndLong, help: "Model file to write (the best by validation).")
    var output: String?
    @Option(help: "TOML file with any of these options as keys.")
    var config: String?
    @Option(help: "Time budget in minutes: the schedule is fitted to it.")
    var minutes: Double?
    @Option(help: "Epochs (default 10 unless --minutes).")
    var epochs: Int?
    @Option(help: "Sequences per batch (default 16).")
    var batch: Int?
    @Option(help: "Peak learning rate (default 3e-3).")
    var lr: Double?
    @Option(name: .customLong("ssm-lr"), help: "Learning rate of the SSM parameters: eigenvalues, step sizes, B (default 1e-3).")
    var ssmLR: Double?
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay outside the SSM group (default 0.01).")
    var weightDecay: Double?
    @Option(help: "Dropout rate on each block's activated SSM output before its output projection, in training only (0–0.9; default 0).")
    var dropout: Double?
    @Option(name: .customLong("average-from"), help: "Average the parameters after every step from this fraction of the schedule on (0 ≤ F < 1; stochastic weight averaging): validation and the exported model use the average (default: none).")
    var averageFrom: Double?
    @Option(help: "Random seed: shuffles, augmentation, initialization (default 0).")
    var seed: UInt64?
    @Option(help: "Threads (default: all cores).")
    var threads: Int?
    @Option(help: "Window length in seconds: clips are cropped or padded to it (default 1).")
    var seconds: Double?
    @Option(help: "Classifier readout: pooled (mean of the per-step logits) or per_step (causal, as it streams).")
    var readout: Objective.Readout?
    @Option(name: .customLong("filter-loss"), help: "Filter loss: mse, esr or si_sdr (default esr).")
    var filterLoss: Objective.FilterLoss?
    @Option(help: "Per-step readout: the class outside words (a label of the data).")
    var background: String?
    @Option(help: "Per-step readout: the share of a word that must be heard before its class becomes the target; before it the target is the background class ([0, 1); default \(Windowing(length: 1).evidence)).")
    var evidence: Double?
    @Option(name: .customLong("val-fraction"), help: "Fraction of each class held out for validation (default 0.1).")
    var valFraction: Double?
    @Option(name: .customLong("val-pattern"), help: "Hold out the recordings whose path contains this (e.g. a speaker).")
    var valPattern: String?
    @Option(name: .customLong("snr-min"), help: "Augmentation: add noise at an SNR from snr-min …")
    var snrMin: Double?
    @Option(name: .customLong("snr-max"), help: "… to snr-max dB.")
    var snrMax: Double?
    @Option(name: .customLong("cut-noise"), help: "Augmentation: probability that the noise covers only the recording, which then starts and ends abruptly in digital silence, rather than the whole window (0–1; default 0).")
    var cutNoise: Double?
    @Option(help: "Augmentation: probability that a recording is cut as a trimmer would, from where its envelope first reaches a random share of its peak (log-uniform from \(Augmentation().trimLevel.lowerBound) to --trim-level) to where it last reaches another such level, so the word starts and ends abruptly (0–1; default 0).")
    var trim: Double?
    @Option(name: .customLong("trim-level"), help: "With --trim: the highest share of its peak a recording may be cut at ([\(Augmentation().trimLevel.lowerBound), 1]; default \(Augmentation().trimLevel.upperBound)).")
    var trimLevel: Double?
    @Option(name: .customLong("trim-pattern"), help: "With --trim: cut only the recordings whose path contains this text (default: every word), e.g. a data set trimmed to the word.")
    var trimPattern: String?
    @Option(name: .customLong("gain-db"), help: "Augmentation: random gain within ±dB (default 6).")
    var gainDB: Double?
    @Option(help: "Augmentation: speed/pitch change by resampling within ±fraction (default 0).")
    var speed: Double?
    @Option(help: "Augmentation: random spectral tilt x_k − a·x_{k−1}, a within ±this (default 0).")
    var tilt: Double?
    @Option(name: .customLong("eq-db"), help: "Augmentation: random peaking EQ sections of gain within ±dB (default 0: off).")
    var eqDB: Double?
    @Option(name: .customLong("eq-bands"), help: "Augmentation: how many random EQ sections per clip (default 3).")
    var eqBands: Int?
    @Option(help: "Augmentation: probability that a clip is whispered (pitch replaced by noise through its envelope; default 0).")
    var whisper: Double?
    @Option(help: "Augmentation: formants moved by a factor within 1 ± this (0–0.5), pitch and timing kept (another vocal tract; default 0).")
    var formant: Double?
    @Option(help: "Augmentation: with this probability (0–1) a clip is reverberated: a synthetic room, RT60 0.1–0.7 s, direct-to-reverberant ratio −2…12 dB, level kept (default 0).")
    var reverb: Double?
    @Option(help: "Augmentation: tempo changed by a factor within 1/(1 + this)…1 + this (0–1), pitch and formants kept (a faster or slower speaker; default 0).")
    var tempo: Double?
    @Option(help: "Augmentation: probability that a clip is band-limited (4th-order low-pass at 1/8–0.45 of the rate; default 0).")
    var lowpass: Double?
    @Option(name: .customLong("mask-channels"), help: "Augmentation: feature masks over the channels of each log-compressing block's input, each up to this fraction of them (0–1; default 0: off).")
    var maskChannels: Double?
    @Option(name: .customLong("mask-time"), help: "Augmentation: feature masks over time of each such block's log-envelopes, each up to this many seconds (default 0: off).")
    var maskTime: Double?
    @Option(help: "Augmentation: how many channel masks and how many time masks per clip (1–16; default 2).")
    var masks: Int?
    @Option(help: "Augmentation: a folder of noise recordings mixed in at the SNR range (instead of white noise).")
    var noise: String?
    @Option(name: .customLong("noise-pattern"), help: "With --noise: only the recordings whose path contains this text get the folder's noise, the others white noise (default: every recording), e.g. a synthetic set whose test takes carry coloured noise.")
    var noisePattern: String?
    @Option(help: "Checkpoint file (default MODEL.ckpt).")
    var checkpoint: String?
    @Option(help: "Resume from this checkpoint.")
    var resume: String?
    @Flag(help: "Unreadable recordings are fatal (default: skipped and listed).")
    var strict = false
    @Flag(name: .customLong("strict-rate"), help: "Refuse recordings at another sample rate (default: resample).")
    var strictRate = false
    @Flag(help: "One JSON object per epoch on stdout.")
    var json = false
    @Flag(name: .shortAndLong, help: "No progress or summaries on stderr.")
    var quiet = false

    func run() throws {
        let fail = { (status: Int32, message: String) -> ExitCode in warn("ssm-stream train: " + message); return ExitCode(status) }
        // The TOML file first, then the flags.
        var o = TrainOptions()
        var arch = self.arch, data = self.data, val = self.val, output = self.output
        var noiseFromConfig: String?
        if let config {
            guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                throw fail(ExitStatus.noInput, "config '\(config)': cannot read the file")
            }
            var (a, d, v, out): (String?, String?, String?, String?) = (nil, nil, nil, nil)
            do { try TrainConfigFile.apply(text, to: &o, arch: &a, data: &d, val: &v, output: &out, noise: &noiseFromConfig) }
            catch { throw fail(ExitStatus.usage, "config '\(config)': \(error.message)") }
            // Paths in the file are relative to the file (as the daemon's); flags win.
            let base = (config as NSString).deletingLastPathComponent
            func rel(_ p: String?) -> String? { p.map { $0.hasPrefix("/") || base.isEmpty ? $0 : base + "/" + $0 } }
            arch = arch ?? rel(a); data = data ?? rel(d); val = val ?? rel(v); output = output ?? rel(out)
            noiseFromConfig = rel(noiseFromConfig)
        }
        if let v = minutes { o.minutes = v; o.epochs = nil }
        if let v = epochs { o.epochs = v; if minutes == nil { o.minutes = nil } }
        if let v = batch { o.batch = v }
        if let v = lr { o.lr = v }
        if let v = ssmLR { o.ssmLR = v }
        if let v = weightDecay { o.weightDecay = v }
        if let v = seed { o.seed = v }
        if let v = threads { o.threads = v }
        if let v = seconds { o.seconds = v }
        if let v = readout { o.readout = v }
        if let v = filterLoss { o.filterLoss = v }
        if let v = background { o.background = v }
        if let v = valFraction { o.valFraction = v }
        if let v = valPattern { o.valPattern = v }
        if let v = snrMin { o.snrMin = v }
        if let v = cutNoise { o.cutNoise = v }
        if let v = trim { o.trim = v }
        if let v = trimLevel { o.trimLevel = v }
        if let v = trimPattern { o.trimPattern = v }
        if let v = noisePattern { o.noisePattern = v }
        if let v = evidence { o.evidence = v }
        if let v = snrMax { o.snrMax = v }
        if let v = gainDB { o.gainDB = v }
        if let v = speed { o.speed = v }
        if let v = tilt { o.tilt = v }
        if let v = eqDB { o.eqDB = v }
        if let v = eqBands { o.eqBands = v }
        if let v = whisper { o.whisper = v }
        if let v = formant { o.formant = v }
        if let v = dropout { o.dropout = v }
        if let v = averageFrom { o.averageFrom = v }
        if let v = tempo { o.tempo = v }
        if let v = lowpass { o.lowpass = v }
        if let v = reverb { o.reverb = v }
        if let v = maskChannels { o.maskChannels = v }
        if let v = maskTime { o.maskTime = v }
        if let v = masks { o.masks = v }
        guard let arch else { throw fail(ExitStatus.usage, "--arch is required (or 'arch' in --config)") }
        guard let data else { throw fail(ExitStatus.usage, "--data is required (or 'data' in --config)") }
        guard let output else { throw fail(ExitStatus.usage, "-o/--output is required (or 'output' in --config)") }
        guard o.batch >= 1, o.seconds > 0, o.lr > 0, o.ssmLR >= 0, (o.epochs ?? 1) >= 1, (o.minutes ?? 1) > 0 else {
            throw fail(ExitStatus.usage, "--batch, --seconds, --lr, --epochs and --minutes must be positive")
        }
        guard o.eqDB >= 0, o.eqDB <= 40, o.eqBands >= 0, o.eqBands <= 16, o.whisper >= 0, o.whisper <= 1,
              o.formant >= 0, o.formant <= 0.5, o.lowpass >= 0, o.lowpass <= 1, (0...1).contains(o.tempo ?? 0),
              (0...1).contains(o.cutNoise ?? 0), (0...1).contains(o.reverb ?? 0), (0...1).contains(o.trim ?? 0) else {
            throw fail(ExitStatus.usage, "--eq-db must be in [0, 40], --eq-bands in [0, 16], --whisper, --lowpass, --reverb, --cut-noise and --trim (probabilities) in [0, 1], --formant in [0, 0.5] and --tempo in [0, 1]")
        }
        guard (0..<1).contains(o.evidence ?? 0) else { throw fail(ExitStatus.usage, "--evidence must be in [0, 1)") }
        guard o.evidence == nil || o.readout == .perStep else {
            throw fail(ExitStatus.usage, "--evidence places the per-step targets: it needs --readout per_step")
        }
        let lowest = Augmentation().trimLevel.lowerBound
        guard o.trimLevel.map({ (lowest...1).contains($0) }) ?? true else { throw fail(ExitStatus.usage, "--trim-level must be in [\(lowest), 1]") }
        guard o.trimLevel == nil || (o.trim ?? 0) > 0 else { throw fail(ExitStatus.usage, "--trim-level bounds the cuts of --trim, and --trim is 0") }
        guard o.trimPattern == nil || (o.trim ?? 0) > 0 else { throw fail(ExitStatus.usage, "--trim-pattern picks the recordings --trim cuts, and --trim is 0") }
        guard o.trimPattern?.isEmpty != true else { throw fail(ExitStatus.usage, "--trim-pattern is empty: leave it out to cut every word") }
        guard o.noisePattern == nil || (noise ?? noiseFromConfig) != nil else {
            throw fail(ExitStatus.usage, "--noise-pattern picks the recordings that get the --noise folder's noise, and no --noise folder is given")
        }
        guard o.noisePattern?.isEmpty != true else { throw fail(ExitStatus.usage, "--noise-pattern is empty: leave it out to give every recording the folder's noise") }
        guard (0...0.9).contains(o.dropout ?? 0) else { throw fail(ExitStatus.usage, "--dropout must be in [0, 0.9]") }
        guard (0..<1).contains(o.averageFrom ?? 0) else { throw fail(ExitStatus.usage, "--average-from must be in [0, 1)") }
        guard (0...1).contains(o.maskChannels ?? 0), (0...o.seconds).contains(o.maskTime ?? 0), (1...16).contains(o.masks ?? 1) else {
            throw fail(ExitStatus.usage, "--mask-channels must be in [0, 1], --mask-time in [0, --seconds] and --masks in [1, 16]")
        }

        // Architecture (JSON, or a model file to continue from).
        var spec: ModelSpec, tensors: [String: Tensor]
        if let bytes = FileManager.default.contents(atPath: arch), bytes.starts(with: [UInt8(ascii: "{")]) == false,
           let parsed = try? ModelFile.parse([UInt8](bytes)) {
            spec = parsed.spec; tensors = parsed.tensors   // half weights continue as floats (Trainer)
        } else {
            guard let bytes = FileManager.default.contents(atPath: arch) else {
                throw fail(ExitStatus.noInput, "architecture '\(arch)': cannot read the file")
            }
            do {
                spec = try ModelFile.decodeSpec(String(decoding: bytes, as: UTF8.self))
                tensors = try Model.initialize(spec, seed: o.seed)
            } catch { throw fail(ExitStatus.badModel, "architecture '\(arch)': \(error.message)") }
        }

        // Data.
        let train: TrainData
        do { train = try TrainData.load(data, task: spec.task, rate: spec.sampleRate, labels: spec.labels, strict: strict, strictRate: strictRate) }
        catch { throw fail(error.status, error.message) }
        if !train.skipped.isEmpty && !quiet {
            warn("ssm-stream train: skipped \(train.skipped.count) unreadable recording(s):")
            for s in train.skipped.prefix(20) { warn("  " + s) }
            if train.skipped.count > 20 { warn("  … and \(train.skipped.count - 20) more") }
        }
        if spec.task == .classify {
            guard train.set.labels.count >= 2 else {
                throw fail(ExitStatus.dataError, "data '\(data)': only one class ('\(train.set.labels.first ?? "")'); a classifier needs at least two")
            }
            if spec.labels == nil { spec.labels = train.set.labels }
            guard spec.dOutput == train.set.labels.count else {
                throw fail(ExitStatus.badModel, "architecture '\(arch)' has d_output \(spec.dOutput), the data \(train.set.labels.count) classes (\(train.set.labels.joined(separator: ", ")))")
            }
            if let bg = o.background, !train.set.labels.contains(bg) {
                throw fail(ExitStatus.usage, "--background '\(bg)' is not a class of the data (\(train.set.labels.joined(separator: ", ")))")
            }
        }
        guard spec.dInput == 1 else { throw fail(ExitStatus.badModel, "architecture '\(arch)': training reads mono recordings, so d_input must be 1 (got \(spec.dInput))") }
        // Augmentations that change what a recording says or how: a filter's clean target would not follow.
        let classifierOnly: [(flag: String, on: Bool, input: String)] = [
            ("--whisper", o.whisper > 0, "lose its voice while its clean target keeps it"),
            ("--formant", o.formant > 0, "change voice while its clean target keeps it"),
            ("--trim", (o.trim ?? 0) > 0, "be cut while its clean target is not"),
            ("--tempo", (o.tempo ?? 0) > 0, "change pace while its clean target keeps it"),
            ("--lowpass", o.lowpass > 0, "lose its upper band while its clean target keeps it"),
        ]
        if spec.task == .filter, let c = classifierOnly.first(where: \.on) {
            throw fail(ExitStatus.usage, "\(c.flag) is for classifiers: a filter's input would \(c.input)")
        }
        if (o.maskChannels ?? 0) > 0 || (o.maskTime ?? 0) > 0, !spec.blocks.contains(where: { ($0.compress ?? .none) != .none }) {
            throw fail(ExitStatus.usage, "--mask-channels and --mask-time mask a log-compressing block's input (\"compress\": \"log\"); architecture '\(arch)' has none")
        }
        if (o.dropout ?? 0) > 0, !spec.blocks.contains(where: { $0.output != .none }) {
            throw fail(ExitStatus.usage, "--dropout drops a block's activated output before its output projection (\"output\": glu, linear, mlp or gated_mlp); architecture '\(arch)' has none")
        }
        var trainSet = train.set, valSet: ClipSet
        if let val {
            do { valSet = try TrainData.load(val, task: spec.task, rate: spec.sampleRate, labels: spec.labels, strict: strict, strictRate: strictRate).set }
            catch { throw fail(error.status, error.message) }
        } else {
            (trainSet, valSet) = train.set.split(pattern: o.valPattern, fraction: o.valFraction, seed: o.seed)
        }
        guard !trainSet.clips.isEmpty else { throw fail(ExitStatus.dataError, "data '\(data)': nothing left to train on after the validation split") }
        if let p = o.trimPattern, !trainSet.clips.contains(where: { $0.source.contains(p) }) {
            throw fail(ExitStatus.usage, "--trim-pattern '\(p)' matches no training recording's path, so --trim would cut nothing")
        }
        if let p = o.noisePattern, !trainSet.clips.contains(where: { $0.source.contains(p) }) {
            throw fail(ExitStatus.usage, "--noise-pattern '\(p)' matches no training recording's path, so the --noise folder would go unused")
        }

        var w = o.windowing(sampleRate: spec.sampleRate, background: o.background.flatMap { spec.labels?.firstIndex(of: $0) })
        if let noise = noise ?? noiseFromConfig {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: noise)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            for f in files {
                do { w.noise.append(try TrainData.readMono(noise + "/" + f, rate: spec.sampleRate, strictRate: false)) }
                catch { if strict { throw fail(error.status, error.message) } else if !quiet { warn("ssm-stream train: noise: skipped \(error.message)") } }
            }
            guard !w.noise.isEmpty else { throw fail(ExitStatus.noInput, "--noise '\(noise)': no readable recordings") }
            if w.augmentation.snrDB == nil { w.augmentation.snrDB = 0...20 }
        }
        if w.augmentation.cutNoise > 0 && w.augmentation.snrDB == nil {
            throw fail(ExitStatus.usage, "--cut-noise shapes the added noise, and none is added: give --snr-min/--snr-max or --noise")
        }

        let ckpt = checkpoint ?? output + ".ckpt"
        var resumed: Checkpoint.Contents?
        if let resume {
            do { resumed = try Checkpoint.load(resume) } catch { throw fail(ExitStatus.dataError, "--resume: \(error.message)") }
            guard resumed!.spec.blocks == spec.blocks, resumed!.spec.dModel == spec.dModel, resumed!.spec.dOutput == spec.dOutput else {
                throw fail(ExitStatus.badModel, "--resume '\(resume)': its architecture differs from '\(arch)'")
            }
            let changed = o.changes(from: resumed!.options)
            guard changed.isEmpty else {
                let list = changed.map { "\($0.key) \($0.checkpoint) → \($0.now)" }.joined(separator: ", ")
                throw fail(ExitStatus.usage, "--resume '\(resume)': it was trained with other options (\(list)); resume with the options it started with (only threads, average_from and the event settings may change)")
            }
        }
        let runner: TrainingRun
        do {
            runner = try TrainingRun(spec: spec, tensors: tensors, train: trainSet, validation: valSet, options: o, windowing: w,
                                     output: output, checkpoint: ckpt, resume: resumed, clock: monotonicSeconds)
        } catch { throw fail(ExitStatus.badModel, error.message) }
        if let resume, let then = resumed?.data {
            let changed = runner.data.changes(from: then)
            guard changed.isEmpty else {
                throw fail(ExitStatus.usage, "--resume '\(resume)': it was trained on other data (\(changed.joined(separator: ", ")) differ\(changed.count == 1 ? "s" : "")); "
                           + "resume with the data, validation set and noise folder it started with")
            }
        }
        setBLASThreads(1)
        if !quiet {
            warn("ssm-stream train: \(trainSet.clips.count) training and \(valSet.clips.count) validation clips, \(spec.labels?.count ?? 0) classes, "
                 + "\(runner.trainer.parameters.count) parameters, \(runner.trainer.threads) thread\(runner.trainer.threads == 1 ? "" : "s"), tape \(runner.trainer.tapeBytes / 1_048_576) MiB"
                 + (resumed != nil ? ", resuming at epoch \(runner.state.epoch + 1) step \(runner.state.step)" : ""))
        }
        // Unblocked, as for the daemon: they save a checkpoint instead of waiting for the run's end.
        signal(SIGINT) { _ in stopRequested = 1 }
        signal(SIGTERM) { _ in stopRequested = 1 }
        ProcessSetup.unblock([SIGINT, SIGTERM])
        let tty = isatty(2) != 0 && !quiet
        var lastDraw = 0.0
        let finished: Bool
        do {
            finished = try runner.run(shouldStop: { stopRequested != 0 }) { event in
                switch event {
                case let .step(epoch, batch, batches, loss, acc, rate, eta):
                    guard tty, monotonicSeconds() - lastDraw > 0.2 || batch == batches else { return }
                    lastDraw = monotonicSeconds()
                    let bar = progressBar(Double(batch) / Double(batches), width: 20)
                    var line = "\repoch \(epoch)/\(runner.epochs) \(bar) \(batch)/\(batches) loss \(fixed(loss, 4))"
                    if spec.task == .classify { line += " acc \(fixed(acc, 3))" }
                    line += " \(humanRate(rate)) samples·steps/s ETA \(clock(eta))  "
                    warnRaw(line)
                case .epoch(let s):
                    if tty { warnRaw("\r\u{1B}[K") }
                    if !quiet {
                        var line = "epoch \(s.epoch)/\(s.epochs): train loss \(fixed(s.trainLoss, 4))"
                        if let a = s.trainAccuracy { line += " acc \(fixed(a, 3))" }
                        if let l = s.valLoss { line += " · val loss \(fixed(l, 4))" }
                        if let a = s.valAccuracy { line += " acc \(fixed(a, 3))" }
                        line += " · \(fixed(s.seconds, 1)) s, \(humanRate(s.samplesStepsPerSecond)) samples·steps/s, lr \(s.learningRate)"
                        warn(line)
                    }
                    if json {
                        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
                        if let d = try? enc.encode(s) { print(String(decoding: d, as: UTF8.self)); fflushStdout() }
                    }
                case .best(let path, _): if !quiet { warn("  best so far → \(path)") }
                case .checkpoint: break
                }
            }
        } catch {
            if tty { warnRaw("\n") }
            switch error.kind {
            case .nonFinite: throw fail(ExitStatus.diverged, error.message)
            case .io: throw fail(ExitStatus.ioError, error.message)
            case .data: throw fail(ExitStatus.dataError, error.message)
            case .architecture: throw fail(ExitStatus.badModel, error.message)
            }
        }
        if !finished {
            if tty { warnRaw("\n") }
            warn("ssm-stream train: interrupted at step \(runner.state.step); checkpoint '\(ckpt)' (continue with --resume \(ckpt))")
            throw ExitCode(ExitStatus.interrupted)
        }
        if !quiet {
            warn("ssm-stream train: done, \(runner.state.step) steps in \(clock(runner.state.seconds)); best epoch \(runner.state.bestEpoch ?? 0) → \(output)")
        }
    }
}

/// Writes to stderr without a newline (the progress bar).
func warnRaw(_ s: String) {
    var e = StandardError()
    e.write(s)
}

func fflushStdout() { fflush(nil) }

func progressBar(_ f: Double, width: Int) -> String {
    let n = max(0, min(width, Int(f * Double(width))))
    return "[" + String(repeating: "#", count: n) + String(repeating: ".", count: width - n) + "]"
}

func humanRate(_ r: Double) -> String {
    r >= 1e6 ? fixed(r / 1e6, 2) + "M" : r >= 1e3 ? fixed(r / 1e3, 1) + "k" : fixed(r, 0)
}

/// `ssm-stream train --config FILE.toml`: the same options as keys (arch, data, val, output and
/// every `TrainOptions` field by its JSON name).
enum TrainConfigFile {
    struct Failure: Error { let message: String }

    static func apply(_ text: String, to o: inout TrainOptions, arch: inout String?, data: inout String?, val: inout String?,
                      output: inout String?, noise: inout String?) throws(Failure) {
        let doc: TOML.Document
        do { doc = try TOML.parse(text) } catch { throw Failure(message: error.description) }
        for e in doc.entries {
            guard e.table.isEmpty else { throw Failure(message: "line \(e.line): no tables here ([\(e.table)])") }
            let key = e.key.replacingOccurrences(of: "-", with: "_")
            func string() throws(Failure) -> String {
                if case .string(let s) = e.value { return s }
                throw Failure(message: "line \(e.line): '\(e.key)' must be a string")
            }
            func number() throws(Failure) -> Double {
                switch e.value {
                case .integer(let i): return Double(i)
                case .float(let f): return f
                default: throw Failure(message: "line \(e.line): '\(e.key)' must be a number")
                }
            }
            func integer() throws(Failure) -> Int {
                if case .integer(let i) = e.value { return Int(i) }
                throw Failure(message: "line \(e.line): '\(e.key)' must be an integer")
            }
            switch key {
            case "arch": arch = try string()
            case "data": data = try string()
            case "val": val = try string()
            case "output": output = try string()
            case "noise": noise = try string()
            case "epochs": o.epochs = try integer(); o.minutes = nil
            case "minutes": o.minutes = try number(); o.epochs = nil
            case "batch": o.batch = try integer()
            case "lr": o.lr = try number()
            case "ssm_lr": o.ssmLR = try number()
            case "weight_decay": o.weightDecay = try number()
            case "dropout": o.dropout = try number()
            case "average_from": o.averageFrom = try number()
            case "warmup": o.warmup = try number()
            case "clip": o.clip = try number()
            case "seed": o.seed = UInt64(max(0, try integer()))
            case "threads": o.threads = try integer()
            case "seconds": o.seconds = try number()
            case "readout":
                guard let r = Objective.Readout(rawValue: try string()) else { throw Failure(message: "line \(e.line): readout is pooled or per_step") }
                o.readout = r
            case "filter_loss":
                guard let f = Objective.FilterLoss(rawValue: try string()) else { throw Failure(message: "line \(e.line): filter_loss is mse, esr or si_sdr") }
                o.filterLoss = f
            case "background": o.background = try string()
            case "tail": o.tail = try number()
            case "evidence": o.evidence = try number()
            case "val_fraction": o.valFraction = try number()
            case "val_pattern": o.valPattern = try string()
            case "gain_db": o.gainDB = try number()
            case "snr_min": o.snrMin = try number()
            case "snr_max": o.snrMax = try number()
            case "speed": o.speed = try number()
            case "tilt": o.tilt = try number()
            case "eq_db": o.eqDB = try number()
            case "eq_bands": o.eqBands = try integer()
            case "whisper": o.whisper = try number()
            case "formant": o.formant = try number()
            case "tempo": o.tempo = try number()
            case "cut_noise": o.cutNoise = try number()
            case "trim": o.trim = try number()
            case "trim_level": o.trimLevel = try number()
            case "trim_pattern": o.trimPattern = try string()
            case "noise_pattern": o.noisePattern = try string()
            case "lowpass": o.lowpass = try number()
            case "reverb": o.reverb = try number()
            case "mask_channels": o.maskChannels = try number()
            case "mask_time": o.maskTime = try number()
            case "masks": o.masks = try integer()
            case "event_threshold": o.eventThreshold = Float(try number())
            case "event_release": o.eventRelease = Float(try number())
            case "event_min_duration": o.eventMinDuration = try number()
            case "event_min_gap": o.eventMinGap = try number()
            case "shift":
                guard case .bool(let b) = e.value else { throw Failure(message: "line \(e.line): shift must be true or false") }
                o.shift = b
            default: throw Failure(message: "line \(e.line): unknown key '\(e.key)'")
            }
        }
    }
}

extension Objective.Readout: ExpressibleByArgument {}
extension Objective.FilterLoss: ExpressibleByArgument {}
