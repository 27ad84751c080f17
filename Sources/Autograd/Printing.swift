import Foundation

/// PyTorch's tensor printing: `tensor([4., 6.], grad_fn=<AddBackward0>)`.
///
/// The rules follow `torch/_tensor_str.py` with its default print options (precision 4,
/// line width 80, summarise above 1000 elements with 3 edge items): integral values print
/// as `4.`; fixed point with 4 decimals unless the non-zero magnitudes span more than
/// 1000× or leave [1e-4, 1e8], then scientific; every element right-aligned to one width.
extension Tensor: CustomStringConvertible {
    public var description: String {
        let prefix = "tensor("
        var body: String
        if count == 0 {
            body = shape == [0] ? "[]" : "[], size=(\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : ""))"
        } else {
            let summarize = count > PrintOptions.threshold
            let formatter = ElementFormatter(kind: kind, values: summarize ? summarizedValues() : scalars)
            body = TensorText(tensor: self, formatter: formatter, summarize: summarize)
                .render(dimension: 0, offset: 0, indent: prefix.count)
        }
        if let gradFn {
            body += ", grad_fn=<\(gradFn.name)>"
        } else if requiresGrad {
            body += ", requires_grad=True"
        }
        return prefix + body + ")"
    }

    /// The elements PyTorch looks at to choose a format when summarising (edge items only).
    private func summarizedValues() -> [Float] {
        var result: [Float] = []
        func visit(_ dim: Int, _ offset: Int) {
            if dim == rank { result.append(storage.pointer[offset]); return }
            let stride = shape[(dim + 1)...].reduce(1, *)
            let n = shape[dim], e = PrintOptions.edgeItems
            let indices = n > 2 * e ? Array(0..<e) + Array((n - e)..<n) : Array(0..<n)
            for i in indices { visit(dim + 1, offset + i * stride) }
        }
        visit(0, 0)
        return result
    }
}

enum PrintOptions {
    static let precision = 4
    static let lineWidth = 80
    static let threshold = 1000
    static let edgeItems = 3
}

/// Chooses one format and width for all elements, as PyTorch's `_Formatter`.
struct ElementFormatter {
    enum Mode { case integral, fixed, scientific, text }
    let kind: Tensor.Kind
    var mode: Mode = .integral
    var width = 1

    init(kind: Tensor.Kind, values: [Float]) {
        self.kind = kind
        if kind != .float {
            mode = .text
            width = values.map { raw($0).count }.max() ?? 1
            return
        }
        let finite = values.filter { $0.isFinite && $0 != 0 }.map { Double($0) }
        guard !finite.isEmpty else { mode = .integral; width = values.map { format($0).count }.max() ?? 1; return }
        let magnitudes = finite.map(abs)
        let lo = magnitudes.min()!, hi = magnitudes.max()!
        let integral = finite.allSatisfy { $0 == $0.rounded(.up) }
        if integral {
            mode = hi / lo > 1000 || hi > 1e8 ? .scientific : .integral
        } else {
            mode = hi / lo > 1000 || hi > 1e8 || lo < 1e-4 ? .scientific : .fixed
        }
        width = finite.map { format(Float($0)).count }.max() ?? 1
        // Non-finite values print as `nan`/`inf`, which may be wider.
        width = max(width, values.filter { !$0.isFinite }.map { format($0).count }.max() ?? 0)
    }

    private func raw(_ v: Float) -> String {
        switch kind {
        case .bool: return v != 0 ? "True" : "False"
        case .int: return String(Int(v))
        case .float: return format(v)
        }
    }

    private func format(_ v: Float) -> String {
        if kind != .float { return raw(v) }
        let d = Double(v)
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        switch mode {
        case .integral: return String(format: "%.0f", d) + "."
        case .fixed: return String(format: "%.\(PrintOptions.precision)f", d)
        case .scientific: return String(format: "%.\(PrintOptions.precision)e", d)
        case .text: return raw(v)
        }
    }

    /// One element, right-aligned to the common width.
    func callAsFunction(_ v: Float) -> String {
        let s = format(v)
        return String(repeating: " ", count: max(0, width - s.count)) + s
    }
}

/// Nested brackets with PyTorch's line breaking and summarisation.
private struct TensorText {
    let tensor: Tensor
    let formatter: ElementFormatter
    let summarize: Bool

    func render(dimension dim: Int, offset: Int, indent: Int) -> String {
        let shape = tensor.shape
        if dim == shape.count { return formatter(tensor.storage.pointer[offset]) }
        let n = shape[dim], e = PrintOptions.edgeItems
        let stride = shape[(dim + 1)...].reduce(1, *)
        let elided = summarize && n > 2 * e
        let indices = elided ? Array(0..<e) + [-1] + Array((n - e)..<n) : Array(0..<n)
        if dim == shape.count - 1 {
            let items = indices.map { $0 < 0 ? " ..." : formatter(tensor.storage.pointer[offset + $0]) }
            let perLine = max(1, (PrintOptions.lineWidth - indent) / (formatter.width + 2))
            var lines: [String] = []
            var i = 0
            while i < items.count {
                lines.append(items[i..<min(i + perLine, items.count)].joined(separator: ", "))
                i += perLine
            }
            return "[" + lines.joined(separator: ",\n" + String(repeating: " ", count: indent + 1)) + "]"
        }
        let rows = indices.map {
            $0 < 0 ? "..." : render(dimension: dim + 1, offset: offset + $0 * stride, indent: indent + 1)
        }
        let separator = "," + String(repeating: "\n", count: shape.count - dim - 1)
            + String(repeating: " ", count: indent + 1)
        return "[" + rows.joined(separator: separator) + "]"
    }
}
