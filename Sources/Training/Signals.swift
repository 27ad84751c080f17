import Dispatch
import Foundation
import Synchronization

/// Turns SIGINT and SIGTERM into a flag the training loop checks after each step, so the
/// step in progress finishes and a checkpoint is written before the process exits.
public final class StopSignals: Sendable {
    private final class Flag: Sendable { let value = Atomic<Int32>(0) }
    private let received = Flag()
    private let sources: UncheckedBox<[DispatchSourceSignal]>

    public init() {
        let received = self.received
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { received.value.store(sig, ordering: .relaxed) }
            source.resume()
            sources.append(source)
        }
        self.sources = UncheckedBox(sources)
    }

    /// The signal received so far, if any: `SIGINT` or `SIGTERM`.
    public var pending: String? {
        switch received.value.load(ordering: .relaxed) {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return nil
        }
    }

    /// Restores the default handlers.
    public func stop() {
        for source in sources.value { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
