#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Single-precision libm, named so they do not clash with the tensor methods.
@inline(__always) func Foundation_exp(_ x: Float) -> Float { expf(x) }
@inline(__always) func Foundation_log(_ x: Float) -> Float { logf(x) }
@inline(__always) func Foundation_pow(_ x: Float, _ y: Float) -> Float { powf(x, y) }
@inline(__always) func Foundation_tanh(_ x: Float) -> Float { tanhf(x) }
@inline(__always) func Foundation_erf(_ x: Float) -> Float { erff(x) }
