import CSystemd

/// What the daemon runtime learns from systemd (journald and sd_notify wiring come with the daemon).
public enum Systemd {
    /// Whether this system was booted with systemd as init (sd_booted).
    public static var booted: Bool { sd_booted() > 0 }
    /// Whether stderr is connected to the journal (JOURNAL_STREAM matches our stderr).
    public static var stderrIsJournal: Bool {
        guard let v = getenv("JOURNAL_STREAM") else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return String(cString: v) == "\(st.st_dev):\(st.st_ino)"
    }
}

#if canImport(Glibc)
import Glibc
#endif
