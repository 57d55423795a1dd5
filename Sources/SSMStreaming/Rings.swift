import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A pipe one thread writes a byte into to wake another that waits on it in poll(2). Posting is one
/// non-blocking write(2): it never waits, whatever the reader does (a full pipe already means
/// "wake up").
public final class Wakeup: @unchecked Sendable {
    /// The end to poll for reading.
    public let fd: Int32
    private let writeFD: Int32

    public init() {
        (fd, writeFD) = Self.nonBlockingPipe()
    }

    /// A pipe whose two ends never block and are closed on exec: (read end, write end).
    public static func nonBlockingPipe() -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        // Not inside precondition(): its condition is not evaluated in an -Ounchecked build.
        let made = pipe(&fds)
        precondition(made == 0, "pipe: \(String(cString: strerror(errno)))")
        for f in fds {
            _ = fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK)
            _ = fcntl(f, F_SETFD, FD_CLOEXEC)
        }
        return (fds[0], fds[1])
    }

    deinit { close(fd); close(writeFD) }

    public func post() {
        var one: UInt8 = 1
        _ = write(writeFD, &one, 1)
    }

    /// Waits up to `milliseconds` for a post (and consumes all pending ones). True if posted.
    @discardableResult
    public func wait(milliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, milliseconds)
        drain()
        return r > 0
    }

    public func drain() {
        var junk: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        while read(fd, &junk, 32) == 32 {}
    }
}

/// The lock-free single-producer single-consumer ring between the source thread and the engine
/// thread: interleaved Float frames, capacity a power of two, head and tail as monotonically
/// increasing frame counters (acquire/release), so neither side ever waits on the other's lock.
///
/// The producer (source) calls `write`; the consumer (engine) `read`. `dataReady` is posted after
/// every write, and `spaceReady` when a read drains the ring past half full, for a side that has
/// nothing to do to sleep on (a producer writes at most a quarter of the capacity at a time).
public final class FrameRing: @unchecked Sendable {
    public let capacity: Int
    public let channels: Int
    private let mask: Int
    private let storage: UnsafeMutablePointer<Float>
    private let head = Atomic<Int>(0)   // frames written (producer only)
    private let tail = Atomic<Int>(0)   // frames read (consumer only)
    public let dataReady = Wakeup()
    public let spaceReady = Wakeup()

    /// A ring holding at least `minFrames` frames of `channels` channels.
    public init(minFrames: Int, channels: Int) {
        var c = 1
        while c < max(minFrames, 2) { c <<= 1 }
        capacity = c; mask = c - 1; self.channels = channels
        storage = .allocate(capacity: c * channels)
    }

    deinit { storage.deallocate() }

    /// Frames waiting to be read.
    public var available: Int { head.load(ordering: .acquiring) - tail.load(ordering: .acquiring) }

    /// Copies up to `frames` frames in; returns how many fit (the rest did not: the caller drops or
    /// retries them).
    public func write(_ x: UnsafePointer<Float>, frames: Int) -> Int {
        let h = head.load(ordering: .relaxed)
        let free = capacity - (h - tail.load(ordering: .acquiring))
        let n = min(frames, free)
        guard n > 0 else { return 0 }
        let start = h & mask
        let first = min(n, capacity - start)
        (storage + start * channels).update(from: x, count: first * channels)
        if n > first { storage.update(from: x + first * channels, count: (n - first) * channels) }
        head.store(h + n, ordering: .releasing)
        dataReady.post()
        return n
    }

    /// Copies up to `frames` frames out; returns how many there were.
    public func read(into y: UnsafeMutablePointer<Float>, frames: Int) -> Int {
        let t = tail.load(ordering: .relaxed)
        let n = min(frames, head.load(ordering: .acquiring) - t)
        guard n > 0 else { return 0 }
        let start = t & mask
        let first = min(n, capacity - start)
        y.update(from: storage + start * channels, count: first * channels)
        if n > first { (y + first * channels).update(from: storage, count: (n - first) * channels) }
        tail.store(t + n, ordering: .releasing)
        // A producer waits only on a ring at least 3/4 full (it writes at most a quarter of it at a
        // time): wake it when the ring drains past half, not after every read (a file source would
        // otherwise be woken, and write a block, once per engine block); and when it is empty (a
        // producer that waits for it to drain).
        let before = head.load(ordering: .relaxed) - t
        if (before > capacity / 2 && before - n <= capacity / 2) || before == n { spaceReady.post() }
        return n
    }
}

/// The engine's events on their way to the reporters: a fixed-size SPSC ring of plain values. A
/// full ring (reporters stalled) drops the newest event and counts it; the engine never waits.
public final class EventRing<Element>: @unchecked Sendable {
    private let capacity: Int
    private let storage: UnsafeMutablePointer<Element>
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)
    private let droppedCount = Atomic<Int>(0)
    public let ready = Wakeup()

    public init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit {
        let t = tail.load(ordering: .relaxed), h = head.load(ordering: .relaxed)
        for i in t..<h { (storage + i % capacity).deinitialize(count: 1) }
        storage.deallocate()
    }

    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Producer: adds `e`, or drops it (counted) when the ring is full. Returns whether it went in.
    @discardableResult
    public func push(_ e: Element) -> Bool {
        let h = head.load(ordering: .relaxed)
        guard h - tail.load(ordering: .acquiring) < capacity else {
            droppedCount.add(1, ordering: .relaxed)
            return false
        }
        (storage + h % capacity).initialize(to: e)
        head.store(h + 1, ordering: .releasing)
        ready.post()
        return true
    }

    /// Consumer: the oldest element, or nil.
    public func pop() -> Element? {
        let t = tail.load(ordering: .relaxed)
        guard t < head.load(ordering: .acquiring) else { return nil }
        let e = (storage + t % capacity).move()
        tail.store(t + 1, ordering: .releasing)
        return e
    }
}
