// A capture device that fails mid-stream: the daemon degrades (status, one journal entry), retries
// with backoff, recovers (one entry) and starts a new stream from the zero state. The failure is
// injected into the real ALSA library by an LD_PRELOAD shim around snd_pcm_readi/snd_pcm_open.

import Foundation
import Testing
import SSM
import SSMIO

/// After $SSM_FAULT_READS successful reads every snd_pcm_readi fails with -ENODEV (the device
/// vanished), and the next $SSM_FAULT_OPENS snd_pcm_open calls fail with -ENOENT; then the device
/// works again.
private let faultSource = #"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <alsa/asoundlib.h>
static long reads, opensFailed;
static int lost;
snd_pcm_sframes_t snd_pcm_readi(snd_pcm_t *pcm, void *buf, snd_pcm_uframes_t n) {
    static snd_pcm_sframes_t (*real)(snd_pcm_t *, void *, snd_pcm_uframes_t);
    if (!real) real = dlsym(RTLD_NEXT, "snd_pcm_readi");
    const char *limit = getenv("SSM_FAULT_READS");
    if (lost) return -ENODEV;
    if (limit && reads >= atol(limit) && opensFailed == 0) { lost = 1; return -ENODEV; }
    reads++;
    return real(pcm, buf, n);
}
int snd_pcm_open(snd_pcm_t **pcm, const char *name, snd_pcm_stream_t stream, int mode) {
    static int (*real)(snd_pcm_t **, const char *, snd_pcm_stream_t, int);
    if (!real) real = dlsym(RTLD_NEXT, "snd_pcm_open");
    const char *fails = getenv("SSM_FAULT_OPENS");
    if (lost && fails && opensFailed < atol(fails)) { opensFailed++; return -ENOENT; }
    lost = 0;
    return real(pcm, name, stream, mode);
}
"""#

@Suite("ssm-streamd: a lost capture device", .serialized)
struct DeviceLossTests {
    @Test("a device that vanishes mid-stream: status degraded with the reason, one journal entry, reopened after 1 + 2 s of backoff, one entry on recovery; the output before is the model on the first frames, after it the model from rest on a new stream")
    func deviceLoss() throws {
        let dir = TempDir()
        let src = dir.file("fault.c"), lib = dir.file("libfault.so")
        try faultSource.write(toFile: src, atomically: true, encoding: .utf8)
        let cc = try runCLI(["cc", "-shared", "-fPIC", "-O2", "-o", lib, src, "-ldl"], executable: URL(fileURLWithPath: "/usr/bin/env"))
        try #require(cc.status == 0, "cc could not build the fault shim: \(cc.stderr)")

        let model = packageRoot.appendingPathComponent("models/butter8-lowpass-1k.safetensors").path
        let tone = Array(try readWAV(noisyTonePath).samples.prefix(24000))
        try tone.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: dir.file("in.raw"))) }
        try """
        pcm.cap { type file slave.pcm "null" file "/dev/null" infile "\(dir.file("in.raw"))" format "raw" }
        """.write(toFile: dir.file("asound.conf"), atomically: true, encoding: .utf8)
        let cfg = try writeConfig(dir, """
        model = "\(model)"
        [source]
        type = "alsa"
        device = "cap"
        duration = 1.25
        [output]
        type = "file"
        path = "out.raw"
        format = "raw"
        encoding = "f32"
        [control]
        socket = "ctl.sock"
        [log]
        target = "stderr"
        """)
        let env = ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:\(dir.file("asound.conf"))",
                   "LD_PRELOAD": lib, "SSM_FAULT_READS": "10", "SSM_FAULT_OPENS": "1"]
        let started = Date()
        let d = try RunningDaemon(["-c", cfg], environment: env)
        let sock = dir.file("ctl.sock")
        let s: [String: Any]
        do { s = try statusWhen(sock) { $0["state"] as? String == "degraded" } } catch {
            let r = d.stop()
            throw TestFailure("\(error); daemon exit \(r.status): \(r.stderr)")
        }
        #expect(s["state"] as? String == "degraded", "\(s)")
        #expect((s["degraded_reason"] as? String)?.contains("No such device") == true, "\(s)")
        let lostAt = s["frames"] as? Int ?? -1
        // The reopened device delivers the rest at once (the file plugin is not paced), so the
        // daemon ends soon after it recovers: the recovery shows in its journal (stderr here).
        let r = d.wait(timeout: 60)
        #expect(r.status == 0 && !r.timedOut, "\(r.stderr)")
        // One failed reopen after 1 s, a good one 2 s later.
        #expect(Date().timeIntervalSince(started) >= 3)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.filter { $0.contains("failed after") && $0.contains("retrying") }.count == 1, "\(r.stderr)")
        #expect(lines.filter { $0.contains("works again") }.count == 1, "\(r.stderr)")

        // The output: the first stream (frames 0..<lostAt of the file), then a new stream from
        // the start of the file again (the file plugin reopened), each from the zero state.
        let out = try readF32(dir.file("out.raw"))
        #expect(out.count == 20000, "1.25 s of frames in all")
        expectExit(try runCLI(["run", "-q", model, dir.file("in.raw"), dir.file("ref.raw"), "--input-format", "f32le",
                               "--rate", "16000", "--channels", "1"]), 0)
        let ref = try readF32(dir.file("ref.raw"))
        try #require(lostAt > 0 && lostAt < out.count && out.count == 20000, "lost at \(lostAt)")
        var worst: Float = 0
        for i in 0..<lostAt { worst = max(worst, abs(out[i] - ref[i])) }
        for i in lostAt..<out.count { worst = max(worst, abs(out[i] - ref[i - lostAt])) }
        #expect(worst < 1e-5, "largest difference \(worst)")
    }
}
