/// The data pipeline's defaults, decided in one place for every command
/// (`train`, `eval`, `data grid`, `data bench`, `data mean`) and the library.
///
/// - Images of varying size (JPEG folders) are rescaled so the shorter side is
///   256 for a network input of 200...256 (the paper: 227 crops of 256), and
///   about 8/7 of the input otherwise; data sets of one stored size are kept.
/// - Random training crops take the input's size from the image padded by
///   `H / 8` zeros per side (at least 1: Fashion-MNIST 3, CIFAR-10 4) when the
///   prepared images are the input's size, and from inside the image (padding
///   0) when they are larger.
public enum PipelineDefaults {
    /// The shorter side images are rescaled to before cropping, or nil to keep them.
    /// - Parameters:
    ///   - storedSize: the data set's one stored image size; nil when images vary (folders).
    ///   - inputSide: the network input's height (a square input).
    public static func resize(storedSize: ImageSize?, inputSide: Int) -> Int? {
        guard storedSize == nil else { return nil }
        return inputSide >= 200 && inputSide <= 256 ? 256 : (inputSide * 8 + 6) / 7
    }

    /// The zero padding of random crops of `input` (height, width) from prepared images of `prepared`.
    public static func cropPadding(prepared: (height: Int, width: Int), input: (height: Int, width: Int)) -> Int {
        prepared == input ? max(1, input.height / 8) : 0
    }

    /// The crop size `data grid` shows when none is given: the paper's 227 after
    /// the 256 resize, otherwise the prepared image's side.
    public static func cropSide(resize: Int?, preparedSide: Int) -> Int {
        resize == 256 ? 227 : preparedSide
    }
}
