import Foundation
// The daemon's configuration: the TOML subset (values, errors with their line) and
// DaemonConfig's checks (defaults, unknown keys, types, ranges, per-source rules, paths).

import Testing
import SSM
@testable import SSMService

@Suite("TOML subset")
struct TOMLTests {
    @Test("values: strings with escapes, literal strings, integers (underscores, hex, octal, binary), floats, booleans, arrays over several lines, comments")
    func values() throws {
        let doc = try TOML.parse("""
        # a comment
        a = "x \\"q\\" \\\\ \\n \\u00e9 # not a comment"   # a comment
        b = 'C:\\raw\\path'
        c = 1_000
        e = 0o17
        f = 0b101
        g = 2.5e-3
        h = true
        i = [ "one", 'two',  # comment inside
              "three", ]
        j = []
        k = -inf
        [table.sub]
        "quoted key" = false
        """)
        let v = Dictionary(uniqueKeysWithValues: doc.entries.map { ($0.table + "/" + $0.key, $0.value) })
        #expect(v["/a"] == .string("x \"q\" \\ \n é # not a comment"))
        #expect(v["/b"] == .string("C:\\raw\\path"))
        #expect(v["/c"] == .integer(1000))
        #expect(v["/e"] == .integer(15))
        #expect(v["/f"] == .integer(5))
        #expect(v["/g"] == .float(2.5e-3))
        #expect(v["/h"] == .bool(true))
        #expect(v["/i"] == .array([.string("one"), .string("two"), .string("three")]))
        #expect(v["/j"] == .array([]))
        #expect(v["/k"] == .float(-.infinity))
        #expect(v["table.sub/quoted key"] == .bool(false))
        #expect(doc.entries.first { $0.key == "k" }?.line == 12)
        #expect(doc.tables.map(\.name) == ["table.sub"])
    }

    @Test("every unsupported or malformed construct is refused with its line", arguments: [
        ("a = {x = 1}", 1, "inline tables"),
        ("\n[[x]]", 2, "arrays of tables"),
        ("a = \"\"\"x", 1, "multi-line strings"),
        ("a = 1979-05-27", 1, "dates"),
        ("a.b = 1", 1, "dotted keys"),
        ("a = 1\na = 2", 2, "given twice"),
        ("[t]\n[t]", 2, "table [t] is given twice"),
        ("a = \"open", 1, "not closed"),
        ("a = hello", 1, "strings need quotes"),
        ("a = [1, 2", 1, "not closed with ']'"),
        ("a = \"\\q\"", 1, "unknown escape"),
        ("a 1", 1, "expected '='"),
        ("a = 1 2", 1, "unexpected text"),
        ("\n\n= 3", 3, "expected a key"),
    ])
    func errors(_ text: String, _ line: Int, _ fragment: String) {
        do {
            _ = try TOML.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.line == line, "\(text): \(error)")
            #expect(error.message.contains(fragment), "\(text): \(error)")
        }
    }

    @Test("a hex integer with a sign is not a value")
    func signedHex() {
        #expect(throws: TOML.ParseError.self) { try TOML.parse("d = -0x10") }
    }
}

@Suite("DaemonConfig")
struct DaemonConfigTests {
    static let minimal = """
    model = "m.safetensors"
    [source]
    type = "alsa"
    """

    @Test("defaults of a minimal configuration")
    func defaults() throws {
        let c = try DaemonConfig.parse(Self.minimal, path: "/etc/ssm-stream/ssm-streamd.toml")
        #expect(c.modelPath == "/etc/ssm-stream/m.safetensors")
        #expect(c.mode == .block && c.block == 256)
        #expect(c.source.kind == .alsa && c.source.device == "default" && c.source.latencyMs == 100)
        #expect(c.source.rate == nil && c.source.channels == nil && c.source.atEnd == .exit)
        #expect(c.output.kind == .none)
        #expect(c.events.threshold == nil && c.events.release == nil && c.events.journal)
        #expect(c.control.socket == "/run/ssm-streamd/control.sock" && c.control.mode == 0o660 && c.control.maxClients == 16)
        #expect(c.log.target == .auto && c.log.level == .info)
    }

    @Test("the shipped configurations parse: configs/ssm-streamd.toml and configs/demo.toml")
    func shipped() throws {
        // <root>/Tests/SSMServiceTests/ConfigTests.swift → <root>
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let c = try DaemonConfig.load(path: root + "/configs/ssm-streamd.toml")
        #expect(c.source.kind == .alsa && c.output.kind == .alsa && c.events.minGap == 0.2)
        let d = try DaemonConfig.load(path: root + "/configs/demo.toml")
        #expect(d.source.kind == .file && d.output.kind == .file && d.control.socket.isEmpty)
        #expect(d.resolve(d.source.path) == root + "/configs/../examples/noisy-tone.wav")
    }

    @Test("every key, read back")
    func everyKey() throws {
        let c = try DaemonConfig.parse("""
        model = "/abs/m.safetensors"
        mode = "step"
        block = 64
        [source]
        type = "pipe"
        path = "-"
        format = "s16le"
        rate = 8000
        channels = 2
        per_channel = true
        resample = true
        resample_quality = "best"
        duration = 1.5
        at_end = "restart"
        ring_seconds = 0.5
        [output]
        type = "file"
        path = "out/x.flac"
        format = "flac"
        encoding = "s24"
        [events]
        threshold = 0.7
        release = 0.6
        min_duration = 0.25
        min_gap = 1
        ignore = ["bg"]
        grouping = "per-class"
        file = "events.jsonl"
        journal = false
        [control]
        socket = ""
        mode = "0600"
        max_clients = 2
        [log]
        target = "stderr"
        level = "debug"
        status_interval = 1
        stats_interval = 0
        """, path: "rel/dir/c.toml")
        #expect(c.modelPath == "/abs/m.safetensors" && c.mode == .step && c.block == 64)
        #expect(c.source.kind == .pipe && c.source.path == "-" && c.source.format == "s16le")
        #expect(c.source.rate == 8000 && c.source.channels == 2 && c.source.perChannel && c.source.resample)
        #expect(c.source.resampleQuality == .best && c.source.duration == 1.5 && c.source.atEnd == .restart && c.source.ringSeconds == 0.5)
        #expect(c.output.kind == .file && c.resolve(c.output.path) == "rel/dir/out/x.flac" && c.output.format == "flac" && c.output.encoding == "s24")
        #expect(c.events.threshold == 0.7 && c.events.release == 0.6 && c.events.minDuration == 0.25 && c.events.minGap == 1)
        #expect(c.events.grouping == .perClass && c.events.settings.grouping == .perClass)
        #expect(c.events.ignore == ["bg"] && c.resolve(c.events.file) == "rel/dir/events.jsonl" && !c.events.journal)
        #expect(c.control.socket == "" && c.control.mode == 0o600 && c.control.maxClients == 2)
        #expect(c.log.target == .stderr && c.log.level == .debug && c.log.statusInterval == 1 && c.log.statsInterval == 0)
        #expect(c.resolve("-") == "-")
    }

    @Test("mistakes are refused with the line and what to write instead", arguments: [
        ("", "'model' is missing"),
        ("model = \"m\"", "[source] is missing"),
        ("model = \"m\"\n[source]\ndevice = \"x\"", "'type' in [source] is missing"),
        (minimal + "\nthresold = 0.5", "line 4: unknown key 'thresold' in [source]"),
        (minimal + "\n[sink]", "line 4: unknown table [sink]"),
        ("model = 3\n[source]\ntype = \"alsa\"", "line 1: 'model' must be a string"),
        ("model = \"m\"\nblock = 0\n[source]\ntype = \"alsa\"", "line 2: 'block' is 0; it must be between 1 and 65536"),
        ("model = \"m\"\nmode = \"fast\"\n[source]\ntype = \"alsa\"", "line 2: 'mode' is 'fast'; one of \"step\", \"block\""),
        (minimal + "\n[events]\ngrouping = \"overlap\"", "line 5: 'grouping' in [events] is 'overlap'; one of \"per-class\", \"exclusive\""),
        (minimal + "\npath = \"x.wav\"", "'path' in [source] is for files and pipes"),
        ("model = \"m\"\n[source]\ntype = \"file\"", "'path' in [source] is missing"),
        ("model = \"m\"\n[source]\ntype = \"file\"\npath = \"x\"\nformat = \"s16le\"", "needs 'rate'"),
        ("model = \"m\"\n[source]\ntype = \"file\"\npath = \"x\"\nformat = \"s16le\"\nrate = 8000", "needs 'channels'"),
        ("model = \"m\"\n[source]\ntype = \"file\"\npath = \"x\"\nrate = 8000", "a file with a header says its own"),
        ("model = \"m\"\n[source]\ntype = \"file\"\npath = \"x\"\nformat = \"mp3\"", "'format' in [source] is 'mp3'"),
        (minimal + "\n[output]\ntype = \"file\"", "'path' in [output] is missing"),
        (minimal + "\n[output]\ntype = \"file\"\npath = \"o\"\nformat = \"mp4\"", "unknown 'format' in [output]: 'mp4'"),
        (minimal + "\n[events]\nthreshold = 1.5", "'threshold' in [events] is 1.5"),
        (minimal + "\n[events]\nthreshold = 0.5\nrelease = 0.6", "must not exceed 'threshold'"),
        (minimal + "\n[events]\nignore = \"bg\"", "must be an array of strings"),
        (minimal + "\n[control]\nmode = \"rw\"", "octal permission bits"),
        (minimal + "\n[log]\nlevel = \"loud\"", "'level' in [log] is 'loud'"),
        (minimal + "\nlatency_ms = \"100\"", "'latency_ms' in [source] must be an integer, not a string"),
    ])
    func refused(_ text: String, _ fragment: String) {
        do {
            _ = try DaemonConfig.parse(text, path: "c.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.hasPrefix("config 'c.toml'"), "\(error.message)")
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test("a missing or unreadable file names itself")
    func missingFile() {
        do { _ = try DaemonConfig.load(path: "/nonexistent/x.toml"); Issue.record("loaded") } catch {
            #expect(error.message == "config '/nonexistent/x.toml': No such file or directory")
        }
    }
}

@Suite("--set overrides, realtime and loop")
struct OverrideTests {
    static let file = """
    model = "m.safetensors"
    [source]
    type = "file"
    path = "in.wav"
    [events]
    threshold = 0.5
    """

    @Test("each override replaces the file's key with a value of its own type; paths are relative to the current directory; new tables are opened")
    func applied() throws {
        let cwd = FileManager.default.currentDirectoryPath
        let c = try DaemonConfig.parse(Self.file, path: "/etc/x/d.toml", overrides: [
            "source.path=other.wav", "model=/abs/n.safetensors", "events.threshold=0.7", "block=64",
            "source.realtime=true", "source.loop=true", "control.socket=./ctl.sock", "control.mode=0600",
            "events.ignore=[\"silence\"]", "log.target=stderr", "mode=\"step\"",
        ])
        #expect(c.source.path == cwd + "/other.wav" && c.resolve(c.source.path) == cwd + "/other.wav")
        #expect(c.modelPath == "/abs/n.safetensors")
        #expect(c.events.threshold == 0.7 && c.block == 64 && c.mode == .step)
        #expect(c.source.realtime && c.source.loop)
        #expect(c.control.socket == cwd + "/./ctl.sock" && c.control.mode == 0o600)
        #expect(c.events.ignore == ["silence"] && c.log.target == .stderr)
        #expect(c.overrides.count == 11)
        // Without overrides: the file's own values, resolved against its directory.
        let plain = try DaemonConfig.parse(Self.file, path: "/etc/x/d.toml")
        #expect(plain.resolve(plain.source.path) == "/etc/x/in.wav" && !plain.source.realtime && !plain.source.loop)
        // The last of two overrides of one key wins; a string value may contain '='.
        let twice = try DaemonConfig.parse(Self.file, path: "d.toml", overrides: ["events.file=/a=b.jsonl", "block=32", "block=16"])
        #expect(twice.block == 16 && twice.events.file == "/a=b.jsonl")
    }

    @Test("a bad override is refused as the file's key would be, named by its --set", arguments: [
        ("source.rate", "'rate' and 'channels' in [source] are for raw or text input"),
        ("block=0", "--set 'block=0': 'block' is 0; it must be between 1 and 65536"),
        ("events.threshold=high", "--set 'events.threshold=high': 'threshold' in [events] must be a number, not a string"),
        ("source.bogus=1", "--set 'source.bogus=1': unknown key 'bogus' in [source]"),
        ("sink.path=x", "--set 'sink.path=x': unknown table [sink]"),
        ("=3", "--set '=3': write KEY=VALUE"),
        ("source.=3", "--set 'source.=3': the key after 'source.' is missing"),
        ("source.loop=yes", "--set 'source.loop=yes': 'loop' in [source] must be true or false, not a string"),
    ])
    func refused(_ override: String, _ fragment: String) {
        let o = override == "source.rate" ? "source.rate=8000" : override
        do {
            _ = try DaemonConfig.parse(Self.file, path: "c.toml", overrides: [o])
            Issue.record("accepted: \(o)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test("realtime and loop are for files; loop makes at_end meaningless", arguments: [
        ("model = \"m\"\n[source]\ntype = \"alsa\"\nrealtime = true", "line 4: 'realtime' in [source] is for a file"),
        ("model = \"m\"\n[source]\ntype = \"pipe\"\npath = \"-\"\nformat = \"f32le\"\nrate = 8\nchannels = 1\nloop = true", "'loop' in [source] is for a file"),
        ("model = \"m\"\n[source]\ntype = \"file\"\npath = \"x\"\nloop = true\nat_end = \"restart\"", "'at_end' in [source] has no effect with loop = true"),
    ])
    func fileOnly(_ text: String, _ fragment: String) {
        do {
            _ = try DaemonConfig.parse(text, path: "c.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }
}

@Suite("model digest")
struct DigestTests {
    @Test("SHA-256 of the FIPS 180-4 examples and of a file across the 64-byte block and 64 KiB read boundaries equals sha256sum's")
    func sha256() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ssm-digest-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func digest(_ bytes: [UInt8]) throws -> String? {
            let p = dir.appendingPathComponent("f").path
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            return ModelDigest.sha256(path: p)
        }
        #expect(try digest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try digest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // One million 'a' (FIPS 180-2 appendix B.3): 16 reads of 64 KiB and a short one.
        #expect(try digest([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        for n in [55, 56, 63, 64, 65, 65536, 65537] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let p = dir.appendingPathComponent("g").path
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            let sum = Process()
            sum.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            sum.arguments = ["sha256sum", p]
            let out = Pipe()
            sum.standardOutput = out
            try sum.run(); sum.waitUntilExit()
            let expected = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
            #expect(ModelDigest.sha256(path: p) == String(expected), "\(n) bytes")
        }
        #expect(ModelDigest.sha256(path: dir.appendingPathComponent("missing").path) == nil)
    }
}

@Suite("block times and the journal's rate limit")
struct OpsUnitTests {
    @Test("block-time bins: 8 per octave from 1 µs, each duration within 9 % of its bin's middle; quantiles and max over the last minute only")
    func blockTimes() {
        for ns in [1_000, 1_500, 3_000, 250_000, 1_000_000, 7_777_777, 2_000_000_000] {
            let mid = BlockTimes.seconds(ofBin: BlockTimes.bin(ns))
            #expect(abs(mid / (Double(ns) * 1e-9) - 1) < 0.09, "\(ns) ns → \(mid) s")
        }
        #expect(BlockTimes.bin(999) == 0 && BlockTimes.bin(1000) == 1)
        let t = BlockTimes()
        let base = 1_000 * BlockTimes.slotNanos   // an arbitrary monotonic time
        #expect(t.summary(now: base) == nil)
        // 98 blocks of 100 µs, one of 1 ms, one of 5 ms, at 10 s steps over a minute.
        for i in 0..<98 { t.record(nanos: 100_000, frames: 256, now: base + i * 500_000_000) }
        t.record(nanos: 1_000_000, frames: 256, now: base + 50_000_000_000)
        t.record(nanos: 5_000_000, frames: 256, now: base + 55_000_000_000)
        let s = t.summary(now: base + 55_000_000_000)!
        #expect(s.blocks == 100 && s.frames == 25600)
        #expect(abs(s.p50 / 100e-6 - 1) < 0.09 && abs(s.p99 / 1e-3 - 1) < 0.09 && s.max == 5e-3, "\(s)")
        #expect(abs(s.busy - (98 * 100e-6 + 6e-3)) < 1e-9)
        // Two minutes later nothing of it is in "the last minute".
        #expect(t.summary(now: base + 180_000_000_000) == nil)
        t.record(nanos: 2_000_000, frames: 100, now: base + 180_000_000_000)
        #expect(t.summary(now: base + 180_000_000_000)?.blocks == 1)
    }

    @Test("the rate limit: a burst of `rate` entries, then one a 1/rate s; the refused are counted and due for report when a token is back")
    func rateLimit() {
        var r = RateLimit(perSecond: 2)
        let burst = [r.take(now: 0), r.take(now: 0), r.take(now: 0.1), r.take(now: 0.2)]
        #expect(burst == [true, true, false, false])
        #expect(r.suppressed == 2 && r.suppressedTotal == 2 && r.since == 0.1)
        #expect(abs(r.reportAt() - 0.5) < 1e-9, "\(r.reportAt())")
        let report = r.report()
        #expect(report?.count == 2 && report?.since == 0.1)
        let again = r.report()
        #expect(again == nil && r.reportAt() == .infinity)
        let back = r.take(now: 0.7)   // 0.5 s at 2/s: one token back
        #expect(back)
        var none = RateLimit(perSecond: 0)
        var all = true
        for _ in 0..<1000 { all = none.take(now: 0) && all }
        #expect(all)
        #expect(none.suppressedTotal == 0)
    }
}
