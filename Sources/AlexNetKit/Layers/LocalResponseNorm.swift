import CVectorMath
/// Which formula an LRN's `alpha` belongs to. There is no default: the paper and
/// every framework disagree by a factor of `n`, and a silent guess is the most
/// common cause of CPU/GPU AlexNet mismatches.
///
/// With window sum `S_c = sum_{j in window(c)} a_j^2`:
/// - ``paper``: `s_c = k + alpha * S_c` (Krizhevsky et al. 2012, section 3.3:
///   k = 2, n = 5, alpha = 1e-4, beta = 0.75).
/// - ``caffe``, ``pytorch``: `s_c = k + (alpha / n) * S_c`, so the paper's
///   alpha 1e-4 is their 5e-4. cuda-convnet and ONNX divide by `n` as well.
///
/// and `b_c = a_c / s_c^beta` in all three.
public enum LRNConvention: Sendable, Equatable, CustomStringConvertible {
    /// The paper's formula: `alpha` multiplies the window sum as written. Odd `n` only.
    case paper
    /// Caffe's `LRN` layer (ACROSS_CHANNELS): `alpha / n` multiplies the sum. Odd `n` only, as in Caffe.
    case caffe
    /// PyTorch's `nn.LocalResponseNorm`: `alpha / n` multiplies the sum. Any `n >= 1`.
    case pytorch

    /// `"paper"`, `"caffe"` or `"pytorch"`, as errors and reports print it.
    public var description: String {
        switch self {
        case .paper: return "paper"
        case .caffe: return "caffe"
        case .pytorch: return "pytorch"
        }
    }
}

/// Local response normalisation across channels (AlexNet after conv1 and conv2).
///
/// Input and output `[N, C, H, W]`. For every image and pixel:
///
///     s_c = k + alpha' * sum_{j in window(c), 0 <= j < C} a_j^2
///     b_c = a_c / s_c^beta
///
/// where `alpha' = alpha` under ``LRNConvention/paper`` and `alpha / n` under
/// ``LRNConvention/caffe`` and ``LRNConvention/pytorch`` (rounded once to
/// `Element`), and `window(c) = [c - n/2, c + (n-1)/2]` with integer division:
/// for odd `n` the symmetric `[c - (n-1)/2, c + (n-1)/2]` of the paper and
/// Caffe; for even `n` exactly PyTorch's `F.local_response_norm`, which pads
/// the channels with `n/2` zeros before and `(n-1)/2` after and averages `n`
/// of them, so `n = 4` gives `[c - 2, c + 1]`. Channels outside `[0, C)`
/// contribute zero: at the edges the window is simply shorter, and `alpha'`
/// stays the same.
///
/// Numerics:
/// - Each window sum is added afresh in ascending channel order, never kept as
///   a running sum updated by adding the entering channel and subtracting the
///   leaving one (Caffe's and cuda-convnet's trick): over 96 or 256 channels
///   the running sum drifts by rounding, and after a large activation leaves
///   the window it can even go negative. A fresh sum is a function of its own
///   window only, which is what an oracle must reproduce. It costs `n` adds per
///   element instead of two, over planes that stay in cache.
/// - For `beta == 0.75` (AlexNet's), `s^-0.75` is `1 / (sqrt(s) * sqrt(sqrt(s)))`
///   with SIMD square roots, which are correctly rounded: within a few ulps of
///   `pow` (the tests hold it to 1e-14 relative in Float64), SIMD-wide where
///   `pow` is one scalar call per element. Other betas call
///   `Element.pow(s, -beta)` per element.
/// - The output is `a * s^-beta` (the power is kept for backward), which may
///   differ in the last bit from PyTorch's `a / s^beta`.
/// - `k > 0` and `alpha >= 0` are required, so `s >= k > 0`: finite inputs give
///   finite outputs. A NaN input makes `s`, and so the output, NaN for every
///   channel whose window holds it.
///
/// Backward, with `g = dLoss/db`, differentiating `b_i = a_i * s_i^-beta`:
///
///     dLoss/da_c = g_c * s_c^-beta
///                - 2 * alpha' * beta * a_c * sum_{i : c in window(i)} g_i * b_i / s_i
///
/// `c in window(i)` means `i - n/2 <= c <= i + (n-1)/2`, that is
/// `i in [c - (n-1)/2, c + n/2]`: the mirror image of the forward window, which
/// differs from it only for even `n`. The layer keeps the input, `s` and
/// `s^-beta` from the forward pass, and recomputes `b = a * s^-beta` exactly
/// as the forward did.
///
/// Work is split one task per (image, channel group), so results are bitwise the same for any
/// worker count.
public final class LocalResponseNorm<Element: TensorElement>: Layer {
    /// The layer's name in errors and reports, e.g. `"norm1"`.
    public let name: String
    /// The window length `n` in channels.
    public let size: Int
    /// `alpha` as given, to be read under ``convention``.
    public let alpha: Double
    /// The exponent `beta`.
    public let beta: Double
    /// The additive constant `k` (2 in the paper and cuda-convnet's AlexNet; Caffe's default is 1).
    public let k: Double
    /// Which formula ``alpha`` belongs to.
    public let convention: LRNConvention
    /// Channel groups normalised independently: a window never crosses from one
    /// group into the next, and each group's edges are channel edges. The paper's
    /// two-tower net normalises each GPU's maps on their own (groups 2), as
    /// cuda-convnet2's two-GPU AlexNet does (one `cmrnorm` layer per GPU).
    public let groups: Int
    /// `alpha'`, the factor of the window sum of squares in `Element`: `alpha`
    /// under ``LRNConvention/paper``, `alpha / n` otherwise (divided in Double,
    /// then rounded once).
    public let sumCoefficient: Element

    /// `s = k + alpha' * sum` from the last forward pass, `[N, C, H, W]`
    /// (Caffe's `scale_` blob), or nil before the first. An oracle can compare it
    /// with another implementation's to locate an LRN mismatch.
    /// After an inference pass, which does not keep it, it is computed on first
    /// reading from the kept input (the same bits).
    public var lastScale: Tensor<Element>? { scaleOfLastPass(pool: .serial) }

    /// Tests set this to send `beta == 0.75` through the general `pow` path,
    /// to compare it with the square-root path.
    var forcesGeneralPower = false

    private let kElement: Element
    private let betaElement: Element
    private var cachedInput: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var outputBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var scaleBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var scalePowerBuffer: Tensor<Element>?
    /// Recycled between passes (``Tensor/recycling(_:shape:zeroed:)``).
    private var inputGradientBuffer: Tensor<Element>?
    private var cachedScale: Tensor<Element>?
    /// `s^-beta` from the last forward pass, `[N, C, H, W]`.
    private var cachedScalePower: Tensor<Element>?

    /// - Parameters:
    ///   - name: the layer's name in errors, e.g. `"norm1"`.
    ///   - n: the window length in channels, at least 1; odd under `.paper` and
    ///     `.caffe` (Caffe refuses even sizes and the paper's symmetric sum has
    ///     no even form); any size under `.pytorch`.
    ///   - alpha: the scale of the window sum, read under `convention`; required,
    ///     like the convention, because its meaning depends on it: the paper's
    ///     value is 1e-4 under `.paper` and 5e-4 under `.caffe` or `.pytorch`.
    ///     Finite and `>= 0`.
    ///   - beta: the exponent, finite. 0.75 takes the square-root fast path.
    ///   - k: the additive constant, finite and `> 0`.
    ///   - convention: which formula `alpha` belongs to; required.
    ///   - groups: channel groups normalised independently (default 1); must divide the channels.
    /// - Throws: ``ConfigurationError`` naming the layer for any out-of-range setting.
    public init(name: String, size n: Int = 5, alpha: Double, beta: Double = 0.75, k: Double = 2,
                convention: LRNConvention, groups: Int = 1) throws {
        func fail(_ problem: String) -> ConfigurationError {
            ConfigurationError(component: name, problem: problem)
        }
        guard n >= 1 else { throw fail("LRN size n = \(n) must be at least 1") }
        guard groups >= 1 else { throw fail("LRN groups = \(groups) must be at least 1") }
        if n % 2 == 0 && convention != .pytorch {
            throw fail("LRN size n = \(n) is even, which the \(convention) convention does not define "
                + "(Caffe accepts odd sizes only; the paper's window i-n/2...i+n/2 has n+1 channels for even n); "
                + "use convention .pytorch for PyTorch's even-size window [c - n/2, c + (n-1)/2]")
        }
        guard alpha.isFinite, alpha >= 0 else { throw fail("LRN alpha = \(alpha) must be finite and >= 0") }
        guard beta.isFinite else { throw fail("LRN beta = \(beta) must be finite") }
        guard k.isFinite, k > 0 else {
            throw fail("LRN k = \(k) must be finite and > 0, so the scale k + alpha * sum never reaches 0")
        }
        let coefficient = convention == .paper ? alpha : alpha / Double(n)
        // Rounding to Float can overflow or flush what Double held.
        guard Element(coefficient).isFinite, Element(k).isFinite, Element(k) > 0, Element(beta).isFinite else {
            throw fail("LRN alpha = \(alpha), beta = \(beta), k = \(k) do not fit \(Element.dtypeName)")
        }
        self.name = name
        self.size = n
        self.alpha = alpha
        self.beta = beta
        self.k = k
        self.convention = convention
        self.groups = groups
        self.sumCoefficient = Element(coefficient)
        self.kElement = Element(k)
        self.betaElement = Element(beta)
    }

    /// Drops what the last forward pass kept for backward, so the next pass can
    /// recycle the buffers in place (a network calls this before each forward).
    public func releaseCaches() {
        cachedInput = nil
        cachedScale = nil
        cachedScalePower = nil
    }

    /// The same shape as the input.
    /// - Throws: ``ShapeError`` naming the layer unless the shape is `[N, C, H, W]`
    ///   with `C` divisible by ``groups``.
    public func outputShape(for inputShape: Shape) throws -> Shape {
        guard inputShape.rank == 4, inputShape[1] % groups == 0 else {
            throw ShapeError(operation: name, argument: "input",
                             expected: groups == 1 ? "[N, C, H, W]" : "[N, C, H, W] with C divisible by \(groups) groups",
                             actual: inputShape)
        }
        return inputShape
    }

    /// The channels `lo...hi` of the forward window of `channel`, clipped to `0..<channels`.
    static func forwardWindow(channel c: Int, size n: Int, channels: Int) -> (lo: Int, hi: Int) {
        (max(0, c - n / 2), min(channels - 1, c + (n - 1) / 2))
    }

    /// The channels `i` whose forward window holds `channel`, clipped to `0..<channels`.
    static func backwardWindow(channel c: Int, size n: Int, channels: Int) -> (lo: Int, hi: Int) {
        (max(0, c - (n - 1) / 2), min(channels - 1, c + n / 2))
    }

    /// - Parameter input: `[N, C, H, W]`.
    /// - Returns: `[N, C, H, W]`, `b = a / (k + alpha' * window sum of a^2)^beta`.
    /// - Throws: ``ShapeError`` naming the layer unless the input has rank 4.
    ///
    /// Only training keeps the scale `s` for backward. Inference writes each
    /// channel's `s` into one plane per worker and drops it, which spares a
    /// write of the whole activation; a backward pass or ``lastScale`` after an
    /// inference pass computes `s` then from the kept input, with the same
    /// arithmetic (the same bits).
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func forward(_ input: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let shape = try outputShape(for: input.shape)
        var output = Tensor<Element>.recycling(&outputBuffer, shape: shape, zeroed: false)
        defer { outputBuffer = output }
        cachedInput = input
        (cachedScale, cachedScalePower) = normalise(input, into: &output, keepingScale: context.mode == .training,
                                                    pool: context.pool)
        return output
    }

    /// The scale `s` of the last forward pass, computed now from its kept input
    /// if that pass did not keep it (inference); nil before any forward pass.
    private func scaleOfLastPass(pool: WorkerPool) -> Tensor<Element>? {
        if let cachedScale { return cachedScale }
        guard let input = cachedInput else { return nil }
        // The output is computed again and thrown away: the kept one is the caller's.
        var output = Tensor<Element>(shape: input.shape)
        (cachedScale, cachedScalePower) = normalise(input, into: &output, keepingScale: true, pool: pool)
        return cachedScale
    }

    /// `output = a * s^-beta` for `input` a, `[N, C, H, W]` (output the same shape).
    /// - Returns: with `keepingScale`, the scale `s` and (for a general beta only)
    ///   `s^-beta`, in the recycled buffers; otherwise nil and nil, each channel's
    ///   `s` having lived in a per-worker plane.
    private func normalise(_ input: Tensor<Element>, into output: inout Tensor<Element>, keepingScale: Bool,
                           pool: WorkerPool) -> (scale: Tensor<Element>?, scalePower: Tensor<Element>?) {
        let shape = input.shape
        let images = shape[0], channels = shape[1], plane = shape[2] * shape[3]
        let n = size
        var scale = keepingScale ? Tensor<Element>.recycling(&scaleBuffer, shape: shape, zeroed: false)
            : Tensor<Element>(shape: [0])
        defer { if keepingScale { scaleBuffer = scale } }
        let power: LRNPower<Element> = (beta == 0.75 && !forcesGeneralPower)
            ? .inverseThreeQuarters : .general(-betaElement)
        // s^-0.75 is two square roots from s: backward recomputes it bit for bit,
        // so only the general power (a scalar pow per element) is kept.
        let keepsPower: Bool
        if case .general = power { keepsPower = keepingScale } else { keepsPower = false }
        var scalePower = keepsPower ? Tensor<Element>.recycling(&scalePowerBuffer, shape: shape, zeroed: false)
            : Tensor<Element>(shape: [0])
        defer { if keepsPower { scalePowerBuffer = scalePower } else if keepingScale { scalePowerBuffer = nil } }
        let k = kElement, coefficient = sumCoefficient

        // One ring of n squared planes per worker, reused by each image it runs;
        // without a kept scale, also one plane per worker for each channel's s.
        let workers = pool.workerCount
        let ringCount = workers * n * plane
        let scratch = UnsafeMutablePointer<Element>.allocate(capacity: max(1, ringCount + (keepingScale ? 0 : workers * plane)))
        defer { scratch.deallocate() }

        input.withUnsafeBufferPointer { a in
            output.withUnsafeMutableBufferPointer { b in
                scale.withUnsafeMutableBufferPointer { s in
                    scalePower.withUnsafeMutableBufferPointer { p in
                        guard let a = a.baseAddress, let b = b.baseAddress else { return }
                        let s = keepingScale ? s.baseAddress : nil
                        let p = keepsPower ? p.baseAddress : nil
                        let imageSize = channels * plane
                        let groups = self.groups
                        let groupChannels = channels / groups, groupSize = groupChannels * plane
                        // One task per (image, group): each is independent, so a batch of one
                        // still spreads over the workers, and the arithmetic is the same.
                        pool.parallelFor(images * groups) { task, worker in
                            let (image, group) = (task / groups, task % groups)
                            let offset = image * imageSize + group * groupSize
                            let powerOut: UnsafeMutablePointer<Element>? = p.map { $0 + offset }
                            let scaleOut = s.map { $0 + offset } ?? scratch + ringCount + worker * plane
                            lrnForwardImage(input: a + offset, output: b + offset, scale: scaleOut,
                                            scaleStride: s == nil ? 0 : plane,
                                            scalePower: powerOut, ring: scratch + worker * n * plane,
                                            channels: groupChannels, plane: plane, size: n,
                                            k: k, coefficient: coefficient, power: power)
                        }
                    }
                }
            }
        }
        return (keepingScale ? scale : nil, keepsPower ? scalePower : nil)
    }

    /// - Parameter outputGradient: dLoss/dOutput, `[N, C, H, W]` like the last input.
    /// - Returns: dLoss/dInput, `[N, C, H, W]` (see the type's documentation for the formula).
    /// - Throws: ``ConfigurationError`` if no forward pass ran, ``ShapeError`` if
    ///   the gradient's shape is not the last input's.
    @_specialize(where Element == Float)
    @_specialize(where Element == Double)
    public func backward(_ outputGradient: Tensor<Element>, context: PassContext) throws -> Tensor<Element> {
        let input = try requireBackwardState(cachedInput: cachedInput, outputGradient: outputGradient)
        guard let scale = scaleOfLastPass(pool: context.pool) else {
            throw ConfigurationError(component: name, problem: "backward was called before forward")
        }
        let scalePower = cachedScalePower ?? Tensor<Element>(shape: [0])
        let recomputesPower = cachedScalePower == nil
        let shape = input.shape
        let images = shape[0], channels = shape[1], plane = shape[2] * shape[3]
        let n = size
        // 2 * alpha' * beta, in Element, in this order.
        let coefficient = 2 * sumCoefficient * betaElement
        var inputGradient = Tensor<Element>.gradientBuffer(&inputGradientBuffer, shape: shape, zeroed: false, context: context)
        defer { if context.gradientBuffers == nil { inputGradientBuffer = inputGradient } }

        let ringCount = context.pool.workerCount * n * plane
        let rings = UnsafeMutablePointer<Element>.allocate(capacity: max(1, ringCount))
        defer { rings.deallocate() }

        input.withUnsafeBufferPointer { a in
            outputGradient.withUnsafeBufferPointer { g in
                scale.withUnsafeBufferPointer { s in
                    scalePower.withUnsafeBufferPointer { p in
                        inputGradient.withUnsafeMutableBufferPointer { da in
                            guard let a = a.baseAddress, let g = g.baseAddress, let s = s.baseAddress,
                                  let da = da.baseAddress else { return }
                            let p = recomputesPower ? nil : p.baseAddress
                            let imageSize = channels * plane
                            let groups = self.groups
                            let groupChannels = channels / groups, groupSize = groupChannels * plane
                            // One task per (image, group), as in forward.
                            context.pool.parallelFor(images * groups) { task, worker in
                                let (image, group) = (task / groups, task % groups)
                                let offset = image * imageSize + group * groupSize
                                let powerIn: UnsafePointer<Element>? = p.map { UnsafePointer($0 + offset) }
                                lrnBackwardImage(input: a + offset, outputGradient: g + offset, scale: s + offset,
                                                 scalePower: powerIn, inputGradient: da + offset,
                                                 ring: rings + worker * n * plane,
                                                 channels: groupChannels, plane: plane, size: n,
                                                 coefficient: coefficient)
                            }
                        }
                    }
                }
            }
        }
        return inputGradient
    }
}

/// How `s^-beta` is computed.
enum LRNPower<T: TensorElement> {
    /// `s^-0.75 = 1 / (sqrt(s) * sqrt(sqrt(s)))`: two correctly rounded square
    /// roots, a product and a division, a vector at a time, instead of a scalar `pow`.
    case inverseThreeQuarters
    /// `pow(s, exponent)` element by element, with `exponent = -beta`.
    case general(T)

    /// `out[i] = s[i]^-0.75` for a plane, with the CPU's vector square root
    /// (CVectorMath: Swift's SIMD `squareRoot()` runs lane by lane), the same
    /// operations in the same order, so the same bits. `out` may be `s`.
    @inline(__always)
    static func inverseThreeQuarters(_ s: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int) {
        if T.self == Float.self {
            alexnet_inverse_three_quarters_f32(UnsafeRawPointer(s).assumingMemoryBound(to: Float.self),
                                               UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self), count)
        } else if T.self == Double.self {
            alexnet_inverse_three_quarters_f64(UnsafeRawPointer(s).assumingMemoryBound(to: Double.self),
                                               UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self), count)
        } else {
            for i in 0..<count { out[i] = inverseThreeQuarters(s[i]) }
        }
    }

    /// `s^-0.75` on one element, the same operations as the vector form.
    @inline(__always)
    static func inverseThreeQuarters(_ s: T) -> T {
        let root = s.squareRoot()
        return 1 / (root * root.squareRoot())
    }
}

@inline(__always)
private func load<T: TensorElement>(_ pointer: UnsafePointer<T>) -> T.Vector {
    UnsafeRawPointer(pointer).loadUnaligned(as: T.Vector.self)
}

@inline(__always)
private func load<T: TensorElement>(_ pointer: UnsafeMutablePointer<T>) -> T.Vector {
    UnsafeRawPointer(pointer).loadUnaligned(as: T.Vector.self)
}

@inline(__always)
private func store<T: TensorElement>(_ value: T.Vector, _ pointer: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: T.Vector.self)
}

/// LRN forward for one image: `a`, `b`, `p` are `[C, plane]`; channel `c`'s
/// scale goes to `s + c * scaleStride` (`plane`: `s` is `[C, plane]`; 0: one
/// plane of scratch that each channel overwrites); `ring` holds `n` planes of
/// scratch.
///
/// Channel by channel, the squares `a_j^2` of the channels entering the window
/// are written into slot `j % n` of the ring (each square is computed once; the
/// window never spans more than `n` channels, so a slot is reused only after its
/// channel has left every later window). Then, vector by vector over the
/// contiguous `plane`, the window's squares are added in ascending `j`, and
/// `s`, `s^-beta` and `b` follow. The scalar tail uses the same operations, so a
/// pixel's result does not depend on its position within a SIMD vector.
@_specialize(where T == Float)
@_specialize(where T == Double)
func lrnForwardImage<T: TensorElement>(
    input a: UnsafePointer<T>, output b: UnsafeMutablePointer<T>, scale s: UnsafeMutablePointer<T>, scaleStride: Int,
    scalePower p: UnsafeMutablePointer<T>?, ring: UnsafeMutablePointer<T>,
    channels: Int, plane: Int, size n: Int, k: T, coefficient: T, power: LRNPower<T>
) {
    let width = T.Vector.scalarCount
    let vectorEnd = plane - plane % width
    let kVector = T.Vector(repeating: k), coefficientVector = T.Vector(repeating: coefficient)
    let slots = UnsafeMutablePointer<UnsafePointer<T>>.allocate(capacity: n)  // a window spans at most n channels
    defer { slots.deallocate() }
    var squared = 0  // channels 0..<squared have their squares in the ring
    for c in 0..<channels {
        let (lo, hi) = LocalResponseNorm<T>.forwardWindow(channel: c, size: n, channels: channels)
        while squared <= hi {
            let source = a + squared * plane, target = ring + (squared % n) * plane
            var x = 0
            while x < vectorEnd {
                let v = load(source + x)
                store(v * v, target + x)
                x += width
            }
            while x < plane {
                target[x] = source[x] * source[x]
                x += 1
            }
            squared += 1
        }

        let channelA = a + c * plane, channelB = b + c * plane
        let channelS = s + c * scaleStride, channelP = p.map { $0 + c * plane }
        // The window's ring slots, in ascending channel order, found once per
        // channel: a `j % n` per vector and window channel (an integer division
        // each) had cost more than the arithmetic.
        for j in lo...hi { slots[j - lo] = UnsafePointer(ring + (j % n) * plane) }
        let windowCount = hi - lo + 1
        var x = 0
        while x < vectorEnd {
            var sum = load(slots[0] + x)
            var j = 1
            while j < windowCount {
                sum += load(slots[j] + x)
                j += 1
            }
            store(kVector + coefficientVector * sum, channelS + x)
            x += width
        }
        while x < plane {
            var sum = slots[0][x]
            var j = 1
            while j < windowCount {
                sum += slots[j][x]
                j += 1
            }
            channelS[x] = k + coefficient * sum
            x += 1
        }
        if case .inverseThreeQuarters = power {
            // s^-0.75 into b, then b = a * b.
            LRNPower<T>.inverseThreeQuarters(UnsafePointer(channelS), into: channelB, count: plane)
            var x = 0
            while x < vectorEnd {
                store(load(channelA + x) * load(channelB + x), channelB + x)
                x += width
            }
            while x < plane {
                channelB[x] = channelA[x] * channelB[x]
                x += 1
            }
        }
        if case .general(let exponent) = power {
            // pow has no SIMD form; one scalar call per element.
            for x in 0..<plane {
                let powered = T.pow(channelS[x], exponent)
                channelP?[x] = powered
                channelB[x] = channelA[x] * powered
            }
        }
    }
}

/// LRN backward for one image: `a`, `g`, `s`, `p`, `da` are `[C, plane]`; `ring`
/// holds `n` planes of scratch.
///
/// `t_i = g_i * b_i / s_i` (with `b_i = a_i * p_i`, bitwise as in the forward)
/// is computed once per channel into ring slot `i % n`; then
/// `da_c = g_c * p_c - coefficient * a_c * sum_{i = lo...hi} t_i` over the
/// mirrored window, added in ascending `i`.
@_specialize(where T == Float)
@_specialize(where T == Double)
func lrnBackwardImage<T: TensorElement>(
    input a: UnsafePointer<T>, outputGradient g: UnsafePointer<T>, scale s: UnsafePointer<T>,
    scalePower p: UnsafePointer<T>?, inputGradient da: UnsafeMutablePointer<T>, ring: UnsafeMutablePointer<T>,
    channels: Int, plane: Int, size n: Int, coefficient: T
) {
    let width = T.Vector.scalarCount
    let vectorEnd = plane - plane % width
    let coefficientVector = T.Vector(repeating: coefficient)
    let slots = UnsafeMutablePointer<UnsafePointer<T>>.allocate(capacity: n)  // a window spans at most n channels
    defer { slots.deallocate() }
    // s^-0.75 when it was not kept: recomputed from s once per channel, when the
    // channel enters the ring, into slot `i % n` of a second ring, where it is
    // still when the main loop reaches the channel (the fill runs at most n/2
    // channels ahead). Otherwise the kept planes.
    let recomputed = UnsafeMutablePointer<T>.allocate(capacity: p == nil ? n * plane : 0)
    defer { recomputed.deallocate() }
    func powers(_ channel: Int) -> UnsafePointer<T> {
        if let p { return p + channel * plane }
        return UnsafePointer(recomputed + (channel % n) * plane)
    }
    var filled = 0  // channels 0..<filled have t_i in the ring
    for c in 0..<channels {
        let (lo, hi) = LocalResponseNorm<T>.backwardWindow(channel: c, size: n, channels: channels)
        while filled <= hi {
            let offset = filled * plane
            let target = ring + (filled % n) * plane
            if p == nil {
                LRNPower<T>.inverseThreeQuarters(s + offset, into: recomputed + (filled % n) * plane, count: plane)
            }
            let powered = powers(filled)
            var x = 0
            while x < vectorEnd {
                let scale = load(s + offset + x)
                let output = load(a + offset + x) * load(powered + x)
                store(load(g + offset + x) * output / scale, target + x)
                x += width
            }
            while x < plane {
                let scale = s[offset + x]
                let output = a[offset + x] * powered[x]
                target[x] = g[offset + x] * output / scale
                x += 1
            }
            filled += 1
        }

        let offset = c * plane
        // The window's ring slots in ascending order, found once per channel (as in forward).
        for i in lo...hi { slots[i - lo] = UnsafePointer(ring + (i % n) * plane) }
        let windowCount = hi - lo + 1
        let powered = powers(c)
        var x = 0
        while x < vectorEnd {
            var sum = load(slots[0] + x)
            var i = 1
            while i < windowCount {
                sum += load(slots[i] + x)
                i += 1
            }
            let direct = load(g + offset + x) * load(powered + x)
            store(direct - coefficientVector * load(a + offset + x) * sum, da + offset + x)
            x += width
        }
        while x < plane {
            var sum = slots[0][x]
            var i = 1
            while i < windowCount {
                sum += slots[i][x]
                i += 1
            }
            let direct = g[offset + x] * powered[x]
            da[offset + x] = direct - coefficient * a[offset + x] * sum
            x += 1
        }
    }
}
