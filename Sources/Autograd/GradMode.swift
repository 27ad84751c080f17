/// Whether operations record the graph for `backward()`: PyTorch's grad mode.
///
/// Task-local (and so also correct for plain synchronous code on any thread): a no-grad
/// scope affects only the code it wraps, nests, and is restored when the scope exits,
/// whether it returns or throws. There is no global mutable flag.
public enum GradMode {
    @TaskLocal public static var isEnabled: Bool = true
}

/// Runs `body` with gradient recording off, like PyTorch's `with torch.no_grad():`.
///
/// Inside, results of operations have `requiresGrad == false` and record no graph; a
/// tensor created with `requiresGrad: true` still reports `true`.
@discardableResult
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false) { try body() }
}

/// Runs `body` with gradient recording on, like `torch.enable_grad()`.
@discardableResult
public func withGrad<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(true) { try body() }
}
