/// The spatial arithmetic of a 2-D convolution or pooling window over one image.
///
/// Output size uses floor: `(H + 2p - k) / s + 1` (PyTorch, Caffe convolution).
/// Pooling may ask for ceil instead; see ``PoolRounding``.
public struct ConvGeometry: Equatable, Sendable {
    /// Input channels seen by one group (`C / groups`).
    public var channels: Int
    public var height: Int
    public var width: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var paddingHeight: Int
    public var paddingWidth: Int
    public var outputHeight: Int
    public var outputWidth: Int

    /// Rows of the im2col matrix: `channels * kernelHeight * kernelWidth`.
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    /// Columns of the im2col matrix: `outputHeight * outputWidth`.
    public var outputPlane: Int { outputHeight * outputWidth }

    /// Geometry with floor rounding of the output size.
    /// - Throws: ``ConfigurationError`` when the kernel does not fit the padded input
    ///   or a stride, kernel or padding is out of range.
    public init(channels: Int, height: Int, width: Int,
                kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int),
                component: String) throws {
        // Sizes beyond 2^24 are no image; refusing them keeps every product below from overflowing.
        let limit = 1 << 24
        guard [channels, height, width, kernel.0, kernel.1, stride.0, stride.1, padding.0, padding.1].allSatisfy({ $0 <= limit }) else {
            throw ConfigurationError(component: component, problem: "sizes above \(limit) are not supported (channels \(channels), "
                + "input \(height)x\(width), kernel \(kernel.0)x\(kernel.1), stride \(stride.0)x\(stride.1), padding \(padding.0)x\(padding.1))")
        }
        guard kernel.0 >= 1, kernel.1 >= 1 else {
            throw ConfigurationError(component: component, problem: "kernel \(kernel.0)x\(kernel.1) must be at least 1x1")
        }
        guard stride.0 >= 1, stride.1 >= 1 else {
            throw ConfigurationError(component: component, problem: "stride \(stride.0)x\(stride.1) must be at least 1")
        }
        guard padding.0 >= 0, padding.1 >= 0 else {
            throw ConfigurationError(component: component, problem: "padding \(padding.0)x\(padding.1) must not be negative")
        }
        guard height + 2 * padding.0 >= kernel.0, width + 2 * padding.1 >= kernel.1 else {
            throw ConfigurationError(
                component: component,
                problem: "kernel \(kernel.0)x\(kernel.1) is larger than the padded input "
                    + "\(height + 2 * padding.0)x\(width + 2 * padding.1) (input \(height)x\(width), padding \(padding.0)x\(padding.1))")
        }
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernel.0
        self.kernelWidth = kernel.1
        self.strideHeight = stride.0
        self.strideWidth = stride.1
        self.paddingHeight = padding.0
        self.paddingWidth = padding.1
        self.outputHeight = (height + 2 * padding.0 - kernel.0) / stride.0 + 1
        self.outputWidth = (width + 2 * padding.1 - kernel.1) / stride.1 + 1
    }
}
