import RealModule
import SSM

/// The training losses, each with its gradient. Shapes: Y, dY (L, C) per-step model outputs of one
/// sequence; targets as named. Every loss is a mean, so that its scale does not depend on L.
public enum Loss {
    /// Sequence classification with a pooled readout: logits m = (1/L)·Σ_k Y_k (for a linear decoder
    /// the decoder of the mean hidden state), loss = −log softmax(m)[label], dY_k = (softmax(m) − e_label)/L.
    /// Returns the loss and the predicted class (argmax m).
    public static func pooledCrossEntropy(_ Y: UnsafePointer<Scalar>, _ dY: UnsafeMutablePointer<Scalar>?, length L: Int,
                                          classes C: Int, label: Int) -> (loss: Double, predicted: Int) {
        var m = [Double](repeating: 0, count: C)
        for k in 0..<L { for c in 0..<C { m[c] += Double(Y[k * C + c]) } }
        for c in 0..<C { m[c] /= Double(L) }
        let (logp, predicted) = logSoftmax(m)
        if let dY {
            for c in 0..<C {
                let g = Scalar((Double.exp(logp[c]) - (c == label ? 1 : 0)) / Double(L))
                for k in 0..<L { dY[k * C + c] = g }
            }
        }
        return (-logp[label], predicted)
    }

    /// Causal per-step classification (how a streaming classifier runs): step k has target class
    /// `targets[k]` (or −1: not counted), loss = mean over counted steps of −log softmax(Y_k)[t_k].
    /// Returns the loss, the number of counted steps and of those the argmax got right.
    public static func perStepCrossEntropy(_ Y: UnsafePointer<Scalar>, _ dY: UnsafeMutablePointer<Scalar>?, length L: Int,
                                           classes C: Int, targets: UnsafePointer<Int32>) -> (loss: Double, counted: Int, correct: Int) {
        var counted = 0
        for k in 0..<L where targets[k] >= 0 { counted += 1 }
        dY?.update(repeating: 0, count: L * C)
        guard counted > 0 else { return (0, 0, 0) }
        var loss = 0.0, correct = 0
        var row = [Double](repeating: 0, count: C)
        for k in 0..<L where targets[k] >= 0 {
            let t = Int(targets[k])
            for c in 0..<C { row[c] = Double(Y[k * C + c]) }
            let (logp, predicted) = logSoftmax(row)
            loss -= logp[t]
            if predicted == t { correct += 1 }
            if let dY { for c in 0..<C { dY[k * C + c] = Scalar((Double.exp(logp[c]) - (c == t ? 1 : 0)) / Double(counted)) } }
        }
        return (loss / Double(counted), counted, correct)
    }

    /// Mean squared error over N = L·C values: (1/N)·Σ (y − t)², dY = 2(y − t)/N.
    public static func mse(_ Y: UnsafePointer<Scalar>, _ T: UnsafePointer<Scalar>, _ dY: UnsafeMutablePointer<Scalar>?, count N: Int) -> Double {
        var s = 0.0
        for i in 0..<N { let e = Double(Y[i]) - Double(T[i]); s += e * e; dY?[i] = Scalar(2 * e / Double(N)) }
        return s / Double(N)
    }

    /// Error-to-signal ratio (the guitar-amp modelling loss): Σ (y − t)² / (Σ t² + ε), dY = 2(y − t)/(Σ t² + ε).
    public static func esr(_ Y: UnsafePointer<Scalar>, _ T: UnsafePointer<Scalar>, _ dY: UnsafeMutablePointer<Scalar>?, count N: Int) -> Double {
        var e2 = 0.0, t2 = 1e-8
        for i in 0..<N { let e = Double(Y[i]) - Double(T[i]); e2 += e * e; t2 += Double(T[i]) * Double(T[i]) }
        if let dY { for i in 0..<N { dY[i] = Scalar(2 * (Double(Y[i]) - Double(T[i])) / t2) } }
        return e2 / t2
    }

    /// Negative scale-invariant SDR in dB (Le Roux et al. 2019): s = (⟨y,t⟩/⟨t,t⟩)·t, n = y − s,
    /// loss = −10·log10(|s|²/|n|²), dY = −(10/ln 10)·(2s/|s|² − 2n/|n|²).
    public static func negativeSISDR(_ Y: UnsafePointer<Scalar>, _ T: UnsafePointer<Scalar>, _ dY: UnsafeMutablePointer<Scalar>?, count N: Int) -> Double {
        var yt = 0.0, tt = 1e-12
        for i in 0..<N { yt += Double(Y[i]) * Double(T[i]); tt += Double(T[i]) * Double(T[i]) }
        let alpha = yt / tt
        var ss = 1e-12, nn = 1e-12
        for i in 0..<N {
            let s = alpha * Double(T[i]), n = Double(Y[i]) - s
            ss += s * s; nn += n * n
        }
        if let dY {
            let k = -10 / Double.log(10)
            for i in 0..<N {
                let s = alpha * Double(T[i]), n = Double(Y[i]) - s
                dY[i] = Scalar(k * (2 * s / ss - 2 * n / nn))
            }
        }
        return -10 * Double.log10(ss / nn)
    }

    /// SI-SDR in dB (the metric; `negativeSISDR` is the loss).
    public static func siSDR(_ y: [Scalar], _ t: [Scalar]) -> Double {
        y.withUnsafeBufferPointer { yp in t.withUnsafeBufferPointer { -negativeSISDR(yp.baseAddress!, $0.baseAddress!, nil, count: min(y.count, t.count)) } }
    }

    /// log softmax of x and its argmax (first on ties).
    public static func logSoftmax(_ x: [Double]) -> ([Double], Int) {
        var mx = -Double.infinity, arg = 0
        for (i, v) in x.enumerated() where v > mx { mx = v; arg = i }
        var z = 0.0
        for v in x { z += Double.exp(v - mx) }
        let lz = mx + Double.log(z)
        return (x.map { $0 - lz }, arg)
    }
}
