import Foundation

// MARK: - libFuzzer entry point for the PNG / PGM decoder (mnist-predict's reader)

/// Compiled together with Sources/Plot/PNGDecoder.swift (and the PNG encoder's signature)
/// by `run-png.sh`. Every input is decoded from memory; an accepted image must have the
/// size it claims, within the decoder's limits, and gray values in [0, 1]; anything other
/// than an accepted image or an `ImageFileError` aborts.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    do {
        let image = try DecodedImage.decode(bytes, file: "fuzz")
        if image.width < 1 || image.height < 1 || image.width > DecodedImage.maximumSide || image.height > DecodedImage.maximumSide {
            fatalError("accepted a \(image.width)x\(image.height) image")
        }
        if image.gray.count != image.width * image.height { fatalError("\(image.gray.count) values for \(image.width)x\(image.height)") }
        if image.gray.contains(where: { !($0 >= 0 && $0 <= 1) }) { fatalError("a gray value outside [0, 1]") }
    } catch is ImageFileError {
        // Rejected with a typed error: the expected outcome for garbage.
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}
