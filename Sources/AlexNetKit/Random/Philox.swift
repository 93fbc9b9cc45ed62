/// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11), as used
/// by cuRAND, PyTorch's CUDA kernels and JAX.
///
/// A counter-based generator is a pure function of (key, counter): element `i`
/// of a dropout mask is the same number whichever thread draws it and in
/// whatever order, which makes masks independent of scheduling and lets another
/// implementation reproduce them. Known-answer tests from the Random123
/// distribution check this implementation.
public struct Philox4x32: Sendable {
    /// The 64-bit key as two 32-bit words.
    public var key: (UInt32, UInt32)

    public init(key: (UInt32, UInt32)) { self.key = key }

    /// Creates a generator keyed by a 64-bit seed (low word first).
    public init(seed: UInt64) {
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    }

    /// The four 32-bit outputs for a 128-bit counter, after 10 rounds.
    @inlinable
    public func block(_ counter: (UInt32, UInt32, UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= 0x9E37_79B9
                k.1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c.0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c.2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            c = (hi1 ^ c.1 ^ k.0, lo1, hi0 ^ c.3 ^ k.1, lo0)
        }
        return c
    }

    /// A uniform number in [0, 1) with 24 random bits, from 32-bit word `bits`.
    /// 24 bits is what a Float holds exactly, so Float and Double draws agree.
    @inlinable
    public static func unitInterval(_ bits: UInt32) -> Double {
        Double(bits >> 8) * (1.0 / 16_777_216.0)
    }
}

/// The random key of one random stream: (seed, step, stream) identify a sequence
/// of 32-bit words indexed by element, as specified in Docs/conventions.md.
///
/// Word `i` of stream `(seed, step, stream)` is output word `i % 4` of
/// Philox4x32-10 with key = seed (low 32 bits first) and counter =
/// (`i / 4` low 32 bits, `i / 4` high 32 bits, `step` low 32 bits, `stream`).
public struct RandomStream: Sendable {
    public let generator: Philox4x32
    public let step: UInt32
    public let stream: UInt32

    /// - Parameters:
    ///   - seed: the run's seed.
    ///   - step: the optimisation step (its low 32 bits are used).
    ///   - stream: which consumer draws (a layer's index, say), so layers never share numbers.
    public init(seed: UInt64, step: UInt64, stream: UInt32) {
        generator = Philox4x32(seed: seed)
        self.step = UInt32(truncatingIfNeeded: step)
        self.stream = stream
    }

    /// Four consecutive words: `word(4 * block) ... word(4 * block + 3)`.
    @inlinable
    public func block(_ block: Int) -> (UInt32, UInt32, UInt32, UInt32) {
        let b = UInt64(block)
        return generator.block((UInt32(truncatingIfNeeded: b), UInt32(truncatingIfNeeded: b >> 32), step, stream))
    }

    /// Word `index` of the stream.
    @inlinable
    public func word(_ index: Int) -> UInt32 {
        let words = block(index >> 2)
        switch index & 3 {
        case 0: return words.0
        case 1: return words.1
        case 2: return words.2
        default: return words.3
        }
    }

    /// Uniform number in [0, 1) for element `index` (24 random bits).
    @inlinable
    public func uniform(_ index: Int) -> Double { Philox4x32.unitInterval(word(index)) }

    /// Calls `body(k, uniform(start + k))` for `k` in `0 ..< count`, in order,
    /// computing each Philox block once for the four elements it serves
    /// (``uniform(_:)`` computes one block per element).
    @inlinable
    public func forEachUniform(from start: Int, count: Int, _ body: (_ k: Int, _ u: Double) -> Void) {
        var index = start
        let end = start + count
        while index < end {
            let words = block(index >> 2)
            let blockEnd = min(end, (index | 3) + 1)
            while index < blockEnd {
                let bits: UInt32
                switch index & 3 {
                case 0: bits = words.0
                case 1: bits = words.1
                case 2: bits = words.2
                default: bits = words.3
                }
                body(index - start, Philox4x32.unitInterval(bits))
                index += 1
            }
        }
    }
}
