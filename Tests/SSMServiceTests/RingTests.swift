// The lock-free rings between the daemon's threads: every frame arrives once and in order across
// wrap-arounds under a concurrent producer and consumer; a full ring refuses (frames) or drops and
// counts (events) instead of waiting.

import Foundation
import Testing
import SSMService
import SSMStreaming

@Suite("Rings")
struct RingTests {
    @Test("FrameRing: 200 000 frames of 3 channels through a 64-frame ring, concurrent producer and consumer, irregular chunk sizes")
    func concurrentOrder() {
        let ring = FrameRing(minFrames: 50, channels: 3)
        #expect(ring.capacity == 64)
        let total = 200_000
        let producer = NativeThread(name: "test-producer") {
            var chunk = [Float](repeating: 0, count: 3 * 37)
            var next = 0, k = 0
            while next < total {
                k = (k * 7 + 3) % 37 + 1                    // chunk sizes 1…37, varying
                let n = min(k, total - next)
                for i in 0..<n { for c in 0..<3 { chunk[i * 3 + c] = Float(next + i) + Float(c) * 0.25 } }
                var off = 0
                while off < n {
                    off += chunk.withUnsafeBufferPointer { ring.write($0.baseAddress! + off * 3, frames: n - off) }
                    if off < n { ring.spaceReady.wait(milliseconds: 10) }
                }
                next += n
            }
        }
        var got = 0, bad = 0
        var out = [Float](repeating: 0, count: 3 * 29)
        while got < total {
            let n = out.withUnsafeMutableBufferPointer { ring.read(into: $0.baseAddress!, frames: 29) }
            if n == 0 { ring.dataReady.wait(milliseconds: 10); continue }
            for i in 0..<n { for c in 0..<3 where out[i * 3 + c] != Float(got + i) + Float(c) * 0.25 { bad += 1 } }
            got += n
        }
        producer.join()
        #expect(got == total)
        #expect(bad == 0)
        #expect(ring.available == 0)
    }

    @Test("FrameRing: a full ring takes only what fits")
    func full() {
        let ring = FrameRing(minFrames: 8, channels: 1)
        let x = [Float](repeating: 1, count: 20)
        #expect(x.withUnsafeBufferPointer { ring.write($0.baseAddress!, frames: 20) } == 8)
        #expect(x.withUnsafeBufferPointer { ring.write($0.baseAddress!, frames: 1) } == 0)
        var y = [Float](repeating: 0, count: 3)
        #expect(y.withUnsafeMutableBufferPointer { ring.read(into: $0.baseAddress!, frames: 3) } == 3)
        #expect(x.withUnsafeBufferPointer { ring.write($0.baseAddress!, frames: 5) } == 3)
    }

    @Test("EventRing: in order; when full the newest is dropped and counted, the producer never waits")
    func events() {
        let ring = EventRing<Int>(capacity: 4)
        for i in 0..<6 { ring.push(i) }
        #expect(ring.dropped == 2)
        var got: [Int] = []
        while let e = ring.pop() { got.append(e) }
        #expect(got == [0, 1, 2, 3])
        ring.push(9)
        #expect(ring.pop() == 9 && ring.pop() == nil)
    }
}
