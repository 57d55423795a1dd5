#if canImport(Glibc)
import Glibc
#endif

/// Whether two paths name the same existing file (device and inode).
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

/// Whether `path` ("-": standard input) is a regular file (not a pipe, terminal, socket or device).
func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    let ok = path == "-" ? fstat(0, &st) == 0 : stat(path, &st) == 0
    return ok && (st.st_mode & S_IFMT) == S_IFREG
}

/// A clock's reading in seconds.
private func clockSeconds(_ clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func monotonicSeconds() -> Double { clockSeconds(CLOCK_MONOTONIC) }

/// CPU seconds this process has used, all threads.
func processCPUSeconds() -> Double { clockSeconds(CLOCK_PROCESS_CPUTIME_ID) }

/// CPU seconds the calling thread has used (a benchmark's own cost, whatever else runs).
func threadCPUSeconds() -> Double { clockSeconds(CLOCK_THREAD_CPUTIME_ID) }

/// `x` to `digits` significant digits, no exponent: "0.042", "3.1", "87", "12345".
func significant(_ x: Double, _ digits: Int = 2) -> String {
    guard x.isFinite, x > 0 else { return x == 0 ? "0" : "\(x)" }
    let magnitude = Int((log10(x)).rounded(.down)) + 1
    return fixed(x, max(0, digits - magnitude))
}

/// How fast a stream ran and what it cost: "123× real time, load 0.0081" — throughput (audio
/// seconds per wall second) and load (CPU seconds per audio second: below 1, it keeps up live).
func speedFigures(audio: Double, wall: Double, cpu: Double) -> String {
    let rtf = audio / max(wall, 1e-9)
    return "\(rtf >= 10 ? fixed(rtf, 0) : significant(rtf))× real time, load \(significant(cpu / max(audio, 1e-12)))"
}

/// `x` with `digits` digits after the point ("%.*f").
func fixed(_ x: Double, _ digits: Int) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([x]) { vsnprintf(&buf, 64, "%.\(digits)f", $0) }
    return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// "1:02:03" or "2:03" for a number of seconds.
func clock(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--:--" }
    let s = Int(seconds.rounded())
    let h = s / 3600, m = s / 60 % 60, r = s % 60
    let mm = h > 0 && m < 10 ? "0\(m)" : "\(m)", ss = r < 10 ? "0\(r)" : "\(r)"
    return h > 0 ? "\(h):\(mm):\(ss)" : "\(mm):\(ss)"
}
