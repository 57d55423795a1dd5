/// The numeric library's one floating-point type: `Float` in every product build.
///
/// The library is written once over `Scalar` and builds in one precision or the other, as LAPACK's
/// s/d routines are one source: `SSM_FLOAT64=1 swift build` (Package.swift) compiles the library and
/// the trainer with `Scalar = Double`, so that the gradient checks take finite differences of the very
/// forward code the product runs, in float64 (`scripts/gradcheck.sh`). Nothing ships in float64.
#if SSM_FLOAT64
public typealias Scalar = Double
#else
public typealias Scalar = Float
#endif

/// The SIMD register the kernels are written over: 8 lanes of `Scalar`.
@usableFromInline typealias V8 = SIMD8<Scalar>
