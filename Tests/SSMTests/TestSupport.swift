// Shared helpers of the SSM tests: an independent complex type for reference maths in Double,
// error measures, random data, and small model builders.

import Foundation
import Testing
@testable import SSM

// MARK: - Reference complex arithmetic (independent of swift-numerics and of the package)

/// A complex number in Double, written out by hand so that reference results do not share code
/// with the implementation under test.
struct Cx: Equatable, CustomStringConvertible {
    var re: Double
    var im: Double
    init(_ re: Double, _ im: Double = 0) { self.re = re; self.im = im }

    static func + (a: Cx, b: Cx) -> Cx { Cx(a.re + b.re, a.im + b.im) }
    static func - (a: Cx, b: Cx) -> Cx { Cx(a.re - b.re, a.im - b.im) }
    static func * (a: Cx, b: Cx) -> Cx { Cx(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re) }
    static func * (s: Double, a: Cx) -> Cx { Cx(s * a.re, s * a.im) }
    static func / (a: Cx, b: Cx) -> Cx {
        let d = b.re * b.re + b.im * b.im
        return Cx((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d)
    }
    var conj: Cx { Cx(re, -im) }
    var abs: Double { (re * re + im * im).squareRoot() }
    /// e^z = e^re (cos im + i sin im).
    static func exp(_ z: Cx) -> Cx { Cx(Foundation.exp(z.re) * cos(z.im), Foundation.exp(z.re) * sin(z.im)) }
    /// z^k by repeated multiplication (k ≥ 0).
    func pow(_ k: Int) -> Cx { var r = Cx(1); for _ in 0..<k { r = r * self }; return r }
    var description: String { "\(re)\(im < 0 ? "-" : "+")\(Swift.abs(im))i" }
}

// MARK: - Error measures

/// Normwise relative error max|got − ref| / max|ref| (NaN anywhere gives +inf).
func maxRelError(_ got: [Double], _ ref: [Double]) -> Double {
    precondition(got.count == ref.count, "length mismatch \(got.count) vs \(ref.count)")
    var num = 0.0, den = 0.0
    for (g, r) in zip(got, ref) {
        let d = Swift.abs(g - r)
        num = max(num, d.isNaN ? .infinity : d)
        den = max(den, Swift.abs(r))
    }
    return num / max(den, .leastNormalMagnitude)
}
func maxRelError(_ got: [Float], _ ref: [Double]) -> Double { maxRelError(got.map(Double.init), ref) }
func maxRelError(_ got: [Float], _ ref: [Float]) -> Double { maxRelError(got.map(Double.init), ref.map(Double.init)) }

func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

// MARK: - Random data

extension SeededRandom {
    mutating func normals(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(normal() * scale) } }
}

// MARK: - Golden vectors

/// /work/shared/golden, found from this file: <repo>/Tests/SSMTests/X.swift → <repo>/../shared/golden.
let goldenRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()          // SSMTests
    .appendingPathComponent("../../../shared/golden")
    .standardizedFileURL.path

/// Sorted `.safetensors` files of one family's golden directory, or nil when the directory is missing.
func goldenFiles(_ family: String) -> [String]? {
    let dir = goldenRoot + "/" + family
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
    return names.filter { $0.hasSuffix(".safetensors") }.sorted().map { dir + "/" + $0 }
}

// MARK: - Models

/// A bare layer: one block with no norm, no residual, no activation and no output projection.
func layerOnlySpec(_ layer: LayerSpec) -> ModelSpec {
    let block = BlockSpec(layer: layer, norm: .none, residual: false, activation: .none, output: .none)
    return ModelSpec(sampleRate: 16000, dInput: layer.dModel, dModel: layer.dModel, dOutput: layer.dModel,
                     encoder: false, decoder: false, blocks: [block])
}

/// Initializes `spec` from `seed` and builds the model; returns it with its tensors.
func makeModel(_ spec: ModelSpec, seed: UInt64) throws -> (Model, [String: Tensor]) {
    let t = try Model.initialize(spec, seed: seed)
    return (try Model(spec: spec, tensors: t), t)
}

/// The message of the ModelError a throwing model operation raises, or nil if it succeeds (an error
/// of any other type is reported as such, so message checks fail on it).
func modelError<T>(_ body: () throws -> T) -> String? {
    do { _ = try body(); return nil }
    catch let e as ModelError { return e.message }
    catch { return "not a ModelError: \(type(of: error)): \(error)" }
}

/// Runs u (L, d_input) through `step` one sample at a time from `state` (a fresh one if nil).
func runSteps(_ m: Model, _ u: [Float], length L: Int, state: ModelState? = nil) -> [Float] {
    let s = state ?? m.makeState(maxBlock: 1)
    var y = [Float](repeating: 0, count: L * m.spec.dOutput)
    let dIn = m.spec.dInput, dOut = m.spec.dOutput
    u.withUnsafeBufferPointer { up in
        y.withUnsafeMutableBufferPointer { yp in
            for k in 0..<L { m.step(up.baseAddress! + k * dIn, yp.baseAddress! + k * dOut, state: s) }
        }
    }
    return y
}

/// Runs u (L, d_input) through `forward` in `mode` from `state` (a fresh one with maxBlock L if nil).
func runForward(_ m: Model, _ u: [Float], length L: Int, mode: ForwardMode, state: ModelState? = nil) -> [Float] {
    let s = state ?? m.makeState(maxBlock: L)
    var y = [Float](repeating: 0, count: L * m.spec.dOutput)
    u.withUnsafeBufferPointer { up in
        y.withUnsafeMutableBufferPointer { yp in
            m.forward(up.baseAddress!, yp.baseAddress!, length: L, state: s, mode: mode)
        }
    }
    return y
}

/// The diagonal layer of block `i`.
func diagonalLayer(_ m: Model, block i: Int = 0) throws -> DiagonalSSM {
    let layer = try #require(m.blocks.indices.contains(i) ? m.blocks[i].layer : nil)
    guard case .diagonal(let l) = layer else { throw ModelError("block \(i) is not a diagonal layer") }
    return l
}
