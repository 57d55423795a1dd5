import RealModule
import SSM

/// AdamW (Loshchilov & Hutter 2019) with two parameter groups, a warm-up then cosine schedule and
/// global-norm gradient clipping:
///
///     g ← g·min(1, c/‖g‖)                                      (clipping over all parameters)
///     m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²,  m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)
///     θ ← θ − η_t·(m̂/(√v̂ + ε) + λθ)                         (λ = 0 in the SSM group, on biases and norms)
///     η_t = η·(t + 1)/W for t < W, then η·(f + (1 − f)·½(1 + cos(π(t − W)/(T − W))))
///
/// The SSM group (eigenvalues, step sizes, B: each family's `ssmParameters`) takes `ssmLearningRate`
/// and no weight decay, as the S4, S5 and LRU papers train them. Deterministic: plain loops in a
/// fixed order, no threads.
public struct Schedule: Sendable, Equatable {
    public var learningRate: Double
    public var ssmLearningRate: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    /// The cosine ends at this fraction of the peak.
    public var finalFraction: Double

    public init(learningRate: Double, ssmLearningRate: Double, warmupSteps: Int, totalSteps: Int, finalFraction: Double) {
        self.learningRate = learningRate; self.ssmLearningRate = ssmLearningRate
        self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.finalFraction = finalFraction
    }

    /// The multiplier of both peaks at step t (0-based).
    public func factor(_ t: Int) -> Double {
        if t < warmupSteps { return Double(t + 1) / Double(max(1, warmupSteps)) }
        let span = max(1, totalSteps - warmupSteps)
        let x = min(1, Double(t - warmupSteps) / Double(span))
        return finalFraction + (1 - finalFraction) * 0.5 * (1 + Double.cos(Double.pi * x))
    }
}

public final class AdamW {
    public var schedule: Schedule
    public let weightDecay: Double
    public let beta1: Double, beta2: Double, epsilon: Double
    /// Maximum global gradient norm (0: no clipping).
    public let clipNorm: Double
    /// Steps taken.
    public private(set) var step: Int = 0
    /// First and second moments, in the parameters' flat layout.
    public private(set) var m: [Scalar], v: [Scalar]

    public init(count: Int, schedule: Schedule, weightDecay: Double, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, clipNorm: Double) {
        self.schedule = schedule; self.weightDecay = weightDecay
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.clipNorm = clipNorm
        m = [Scalar](repeating: 0, count: count); v = m
    }

    /// Restores moments and the step count (a checkpoint).
    public func restore(step: Int, m: [Scalar], v: [Scalar]) {
        precondition(m.count == self.m.count && v.count == self.v.count)
        self.step = step; self.m = m; self.v = v
    }

    /// One update of `p` from its gradients. Returns the gradient norm before clipping and the
    /// learning rate used.
    @discardableResult
    public func update(_ p: ParameterStore) -> (gradientNorm: Double, learningRate: Double) {
        var sq = 0.0
        for g in p.gradients { sq += Double(g) * Double(g) }
        let norm = sq.squareRoot()
        let clip = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1
        let f = schedule.factor(step)
        step += 1
        let c1 = 1 - Double.pow(beta1, Double(step)), c2 = 1 - Double.pow(beta2, Double(step))
        for i in p.names.indices {
            let lr = f * (p.isSSM[i] ? schedule.ssmLearningRate : schedule.learningRate)
            let wd = p.decays[i] ? weightDecay : 0
            for j in p.range(i) {
                let g = Double(p.gradients[j]) * clip
                let mj = beta1 * Double(m[j]) + (1 - beta1) * g
                let vj = beta2 * Double(v[j]) + (1 - beta2) * g * g
                m[j] = Scalar(mj); v[j] = Scalar(vj)
                let x = Double(p.values[j])
                p.values[j] = Scalar(x - lr * ((mj / c1) / ((vj / c2).squareRoot() + epsilon) + wd * x))
            }
        }
        return (norm, f * schedule.learningRate)
    }
}
