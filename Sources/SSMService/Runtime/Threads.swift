import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running a closure: the daemon's source and engine threads are plain threads
/// (not a task pool) so each can block on its device or ring without starving anything else.
public struct NativeThread: @unchecked Sendable {
    public let handle: pthread_t

    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    /// Starts `body` on a new thread named `name` (shown by top -H and in /proc).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box { ssm_set_thread_name(name); body() }).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { p in
            let b = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
            b.body()
            return nil
        }, box)
        precondition(r == 0, "pthread_create: \(String(cString: strerror(r)))")
        handle = t
    }

    public func join() { pthread_join(handle, nil) }

    /// Lets the thread end on its own, never joined.
    public func detach() { pthread_detach(handle) }

    /// Interrupts a blocking read(2) in the thread (SIGUSR1, whose handler does nothing and is
    /// installed without SA_RESTART, so the call returns EINTR).
    public func interrupt() { pthread_kill(handle, SIGUSR1) }

    /// Installs the no-op SIGUSR1 handler `interrupt` relies on (once, at start-up).
    public static func installInterruptHandler() {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0
        sigaction(SIGUSR1, &sa, nil)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
@inline(__always)
public func monotonicNanos() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
