import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Process-level set-up both executables run first thing (the numeric library never touches the
/// process: no environment, no exec).
public enum ProcessSetup {
    /// OpenBLAS 0.3.21 (Debian 12) picks its SkylakeX/Cooperlake kernels on AVX-512 CPUs, whose
    /// small-matrix sgemm path mallocs a scratch buffer on every call: one heap allocation per
    /// block in the engine's hot path. The core is chosen when the library loads, from
    /// OPENBLAS_CORETYPE, so on an AVX-512 machine without that variable this sets
    /// OPENBLAS_CORETYPE=Haswell (AVX2+FMA kernels, which allocate nothing) and re-executes the
    /// program. A user's own OPENBLAS_CORETYPE is respected; if the exec fails (no /proc), the
    /// program runs on with the library's own choice.
    public static func pinBLASCoreForSteadyState() {
        guard getenv("OPENBLAS_CORETYPE") == nil, cpuHasAVX512() else { return }
        setenv("OPENBLAS_CORETYPE", "Haswell", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// Unblocks `signals` for this thread and the threads it starts later: a launcher may hand down
    /// a mask blocking them (a test harness's children get one), and a blocked signal stays pending
    /// instead of reaching the handler the program installed. Install the handlers first, so that
    /// one already pending is caught rather than fatal.
    public static func unblock(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in signals { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// CPUID, not /proc/cpuinfo: the hardened unit hides the latter (ProcSubset=pid).
    private static func cpuHasAVX512() -> Bool { ssm_cpu_has_avx512f() != 0 }
}
