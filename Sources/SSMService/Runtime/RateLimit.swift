/// A token bucket for journal entries: `perSecond` on average, in bursts of up to `perSecond`
/// (at least 1); what it refuses is counted, to be reported in one entry once the bucket has a
/// token again. `perSecond` 0: no limit. Times are whatever clock the caller keeps (the daemon:
/// seconds of stream), never decreasing.
struct RateLimit {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last = -Double.infinity
    /// Entries refused since the last report, and when the first of them was.
    private(set) var suppressed = 0
    private(set) var since = 0.0
    /// All refused since start.
    private(set) var suppressedTotal = 0

    init(perSecond r: Double) { rate = r; burst = max(1, r); tokens = max(1, r) }

    /// The same counts (refused, since when, in all) under another rate (a reload).
    func withRate(_ r: Double) -> RateLimit {
        var n = RateLimit(perSecond: r)
        n.suppressed = suppressed; n.since = since; n.suppressedTotal = suppressedTotal
        n.last = last; n.tokens = min(n.burst, tokens)
        return n
    }

    private mutating func refill(_ now: Double) {
        if now > last { tokens = min(burst, tokens + (last.isFinite ? (now - last) * rate : burst)); last = now }
    }

    /// Whether an entry at `now` (seconds) may be written; a refusal is counted.
    mutating func take(now: Double) -> Bool {
        guard rate > 0 else { return true }
        refill(now)
        if tokens >= 1 { tokens -= 1; return true }
        if suppressed == 0 { since = now }
        suppressed += 1; suppressedTotal += 1
        return false
    }

    /// When the refused entries are due to be reported: once a token is back, or never when
    /// nothing was refused.
    func reportAt() -> Double {
        guard suppressed > 0, rate > 0 else { return .infinity }
        return last + max(0, 1 - tokens) / rate
    }

    /// The refused entries to report (count, since when), cleared; nil if none.
    mutating func report() -> (count: Int, since: Double)? {
        guard suppressed > 0 else { return nil }
        defer { suppressed = 0 }
        return (suppressed, since)
    }
}
