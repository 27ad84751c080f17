// MARK: - Color

/// An 8-bit sRGB colour.
public struct Color: Sendable, Equatable, Hashable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// From a 24-bit `0xRRGGBB` literal.
    public init(hex: UInt32) {
        self.init(red: UInt8(truncatingIfNeeded: hex >> 16), green: UInt8(truncatingIfNeeded: hex >> 8),
                  blue: UInt8(truncatingIfNeeded: hex))
    }

    public static let white = Color(red: 255, green: 255, blue: 255)
    public static let black = Color(red: 0, green: 0, blue: 0)
    public static let darkGray = Color(red: 64, green: 64, blue: 64)
    public static let lightGray = Color(red: 224, green: 224, blue: 224)
    public static let red = Color(red: 214, green: 39, blue: 40)
    public static let green = Color(red: 44, green: 160, blue: 44)

    /// matplotlib's `tab10` cycle, used for line series in order.
    public static let palette: [Color] = [
        Color(hex: 0x1F77B4), Color(hex: 0xFF7F0E), Color(hex: 0x2CA02C), Color(hex: 0xD62728),
        Color(hex: 0x9467BD), Color(hex: 0x8C564B), Color(hex: 0xE377C2), Color(hex: 0x7F7F7F),
    ]

    /// Relative luminance in [0, 1] (Rec. 709 weights on the 8-bit values), used to pick a
    /// readable text colour on top of a cell.
    public var luminance: Double {
        (0.2126 * Double(red) + 0.7152 * Double(green) + 0.0722 * Double(blue)) / 255
    }
}

// MARK: - Colormap

/// Maps a value in [0, 1] to a colour. Values outside are clamped; NaN maps to 0.
public enum Colormap: Sendable, Equatable {
    /// Black (0) to white (1).
    case gray
    /// matplotlib's `jet`: dark blue (0, 0, 128) through cyan, yellow to dark red (128, 0, 0).
    case jet
    /// White to dark blue, like matplotlib's `Blues`; used for confusion matrices.
    case blues

    /// The colour for `value` in [0, 1], from a 256-entry table like matplotlib's (`N = 256`).
    public func color(_ value: Float) -> Color {
        let table = self.table
        let clamped = value.isNaN ? 0 : min(max(value, 0), 1)
        return table[Int(clamped * 255 + 0.5)]
    }

    /// 256 colours, index `i` for the value `i / 255`.
    public var table: [Color] {
        switch self {
        case .gray: return Colormap.grayTable
        case .jet: return Colormap.jetTable
        case .blues: return Colormap.bluesTable
        }
    }

    // MARK: - Tables

    /// A piecewise-linear channel: `(position, value)` anchors in increasing position.
    typealias Segments = [(position: Double, value: Double)]

    /// matplotlib's `_jet_data` (lib/matplotlib/_cm.py).
    static let jetRed: Segments = [(0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)]
    static let jetGreen: Segments = [(0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)]
    static let jetBlue: Segments = [(0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0)]

    static let grayTable: [Color] = (0..<256).map { index in
        Color(red: UInt8(index), green: UInt8(index), blue: UInt8(index))
    }

    static let jetTable: [Color] = makeTable(red: jetRed, green: jetGreen, blue: jetBlue)

    static let bluesTable: [Color] = makeTable(
        red: [(0, 0.97), (0.5, 0.42), (1, 0.03)],
        green: [(0, 0.98), (0.5, 0.68), (1, 0.19)],
        blue: [(0, 1.0), (0.5, 0.84), (1, 0.42)])

    static func makeTable(red: Segments, green: Segments, blue: Segments) -> [Color] {
        (0..<256).map { index in
            let position = Double(index) / 255
            return Color(red: channel(red, at: position), green: channel(green, at: position),
                         blue: channel(blue, at: position))
        }
    }

    /// Linear interpolation between the anchors around `position`, scaled to 0...255.
    static func channel(_ segments: Segments, at position: Double) -> UInt8 {
        var value = segments[segments.count - 1].value
        for index in 1..<segments.count where position <= segments[index].position {
            let lower = segments[index - 1]
            let upper = segments[index]
            let fraction = (position - lower.position) / (upper.position - lower.position)
            value = lower.value + fraction * (upper.value - lower.value)
            break
        }
        return UInt8((min(max(value, 0), 1) * 255).rounded())
    }
}
