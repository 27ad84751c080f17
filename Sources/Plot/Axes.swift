import Foundation

// MARK: - Ticks

/// Tick positions and labels for an axis, at "nice" steps (1, 2 or 5 times a power of ten).
public struct Ticks: Sendable, Equatable {
    public var values: [Double]
    public var labels: [String]

    /// About `targetCount` ticks inside `lower...upper`. A degenerate or non-finite range
    /// gives a single tick at `lower` (or 0).
    /// `integers`: only whole-number ticks (epochs), a step of at least 1.
    public init(lower: Double, upper: Double, targetCount: Int, integers: Bool = false) {
        guard lower.isFinite, upper.isFinite, upper > lower, targetCount >= 1 else {
            let value = lower.isFinite ? (integers ? lower.rounded() : lower) : 0
            values = [value]
            labels = [Ticks.format(value, step: max(abs(value), 1))]
            return
        }
        var step = Ticks.niceStep((upper - lower) / Double(targetCount))
        if integers { step = max(1, step.rounded(.up)) }
        var values: [Double] = []
        var index = (lower / step).rounded(.up)
        while index * step <= upper + step * 1e-9 {
            values.append(index * step)
            index += 1
        }
        self.values = values
        labels = values.map { Ticks.format($0, step: step) }
    }

    /// 1, 2 or 5 times a power of ten, the smallest not below `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        for multiple in [1.0, 2.0, 5.0, 10.0] where multiple * magnitude >= raw * (1 - 1e-9) {
            return multiple * magnitude
        }
        return 10 * magnitude
    }

    /// As many decimals as the step needs; very large or small values in exponent form.
    static func format(_ value: Double, step: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1e6 || abs(value) < 1e-4 { return String(format: "%.2g", value) }
        let decimals = max(0, Int((-log10(step)).rounded(.up)))
        return String(format: "%.\(min(decimals, 6))f", value)
    }
}

// MARK: - Value ranges

/// The smallest and largest finite value, or `0...1` when there is none; a constant input
/// is widened by ±0.5 so it can still be mapped to a colormap or axis.
func finiteRange<C: Collection>(_ values: C) -> ClosedRange<Float> where C.Element == Float {
    var low = Float.infinity, high = -Float.infinity
    for value in values where value.isFinite {
        low = min(low, value)
        high = max(high, value)
    }
    guard low <= high else { return 0...1 }
    if low == high { return (low - 0.5)...(high + 0.5) }
    return low...high
}

// MARK: - Colorbar

/// Layout and drawing of a vertical colorbar with tick labels on its right.
enum Colorbar {
    static let barWidth = 16
    static let gap = 4

    /// Total width taken by a colorbar over `range` with labels at `scale`.
    static func width(range: ClosedRange<Float>, height: Int, scale: Int) -> Int {
        let labels = tickLabels(range: range, height: height, scale: scale)
        let labelWidth = labels.map { BitmapFont.textWidth($0.label, scale: scale) }.max() ?? 0
        return barWidth + gap + 4 + labelWidth
    }

    /// Draws the bar with its top-left at `(x, y)`: `range.upperBound` at the top.
    static func draw(on canvas: inout Canvas, x: Int, y: Int, height: Int, colormap: Colormap,
                     range: ClosedRange<Float>, scale: Int) {
        guard height >= 2 else { return }
        for row in 0..<height {
            let fraction = Float(height - 1 - row) / Float(height - 1)
            canvas.fill(x: x, y: y + row, width: barWidth, height: 1, color: colormap.color(fraction))
        }
        canvas.strokeRectangle(x: x - 1, y: y - 1, width: barWidth + 2, height: height + 2, color: .darkGray)
        let textHeight = 7 * scale
        for tick in tickLabels(range: range, height: height, scale: scale) {
            let row = y + Int(Double(height - 1) * (1 - tick.fraction))
            canvas.fill(x: x + barWidth, y: row, width: gap, height: 1, color: .darkGray)
            let textTop = min(max(row - textHeight / 2, y - textHeight / 2), y + height - textHeight / 2)
            canvas.drawText(tick.label, x: x + barWidth + gap + 4, y: textTop, scale: scale, color: .black)
        }
    }

    /// Nice ticks inside the range, or its two ends when fewer than two nice ticks fit.
    static func tickLabels(range: ClosedRange<Float>, height: Int, scale: Int) -> [(fraction: Double, label: String)] {
        let lower = Double(range.lowerBound), upper = Double(range.upperBound)
        guard upper > lower else { return [(0, Ticks.format(lower, step: 1))] }
        let targetCount = max(2, height / (20 * scale))
        let ticks = Ticks(lower: lower, upper: upper, targetCount: targetCount)
        if ticks.values.count >= 2 {
            return zip(ticks.values, ticks.labels).map { ((($0 - lower) / (upper - lower)), $1) }
        }
        let step = (upper - lower)
        return [(0, Ticks.format(lower, step: step / 10)), (1, Ticks.format(upper, step: step / 10))]
    }
}
