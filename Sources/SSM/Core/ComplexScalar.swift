import ComplexModule
import RealModule

// Complex × real scaling, as written in the papers (swift-numerics leaves it out on purpose).
extension Complex where RealType == Double {
    static func * (z: Complex, s: Double) -> Complex { Complex(z.real * s, z.imaginary * s) }
    static func * (s: Double, z: Complex) -> Complex { Complex(z.real * s, z.imaginary * s) }
    static func / (z: Complex, s: Double) -> Complex { Complex(z.real / s, z.imaginary / s) }
}
