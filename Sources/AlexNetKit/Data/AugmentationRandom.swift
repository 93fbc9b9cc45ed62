import Foundation

/// Every random number of the data pipeline, as pure functions of
/// (seed, epoch, example index): a batch's content depends on neither the
/// thread count, nor the prefetch depth, nor the order images are processed in.
///
/// Each consumer has its own ``RandomStream`` id; the step is the epoch:
///
/// | stream | words used for example `i` (dataset index) | meaning |
/// |---|---|---|
/// | `0xDA7A_0000` shuffle | words `2k`, `2k + 1` for Fisher-Yates step `k` | epoch order |
/// | `0xDA7A_0001` crop | word `2i` (row), `2i + 1` (column) | crop offset |
/// | `0xDA7A_0002` flip | word `i`: flip when its top bit is 1 | mirror |
/// | `0xDA7A_0003` PCA colour | words `4i ... 4i + 3` (Philox block `i`) | three N(0, 1) draws |
/// | `0xDA7A_0004` holdout | as the shuffle, step 0 | which training examples validate |
///
/// An offset uniform in `0..<n` is `(w * n) >> 32` for a 32-bit word `w`.
public enum AugmentationRandom {
    /// Stream id of the epoch order.
    public static let shuffleStream: UInt32 = 0xDA7A_0000
    /// Stream id of the random crop offsets.
    public static let cropStream: UInt32 = 0xDA7A_0001
    /// Stream id of the horizontal flips.
    public static let flipStream: UInt32 = 0xDA7A_0002
    /// Stream id of the PCA colour alphas.
    public static let pcaStream: UInt32 = 0xDA7A_0003
    /// Stream id of the held-out validation examples.
    public static let holdoutStream: UInt32 = 0xDA7A_0004

    /// `(word * n) >> 32`: uniform in `0..<n` (bias below n / 2^32).
    @inlinable
    public static func below(_ n: Int, word: UInt32) -> Int {
        Int((UInt64(word) * UInt64(n)) >> 32)
    }

    /// The crop's top-left corner for example `index`: row uniform in
    /// `0...rowRange`, column uniform in `0...columnRange`.
    public static func cropOffset(seed: UInt64, epoch: Int, index: Int, rowRange: Int, columnRange: Int) -> (top: Int, left: Int) {
        let stream = RandomStream(seed: seed, step: UInt64(epoch), stream: cropStream)
        return (below(rowRange + 1, word: stream.word(2 * index)), below(columnRange + 1, word: stream.word(2 * index + 1)))
    }

    /// Whether example `index` is mirrored: word `index` has its top bit set (probability 1/2).
    public static func flips(seed: UInt64, epoch: Int, index: Int) -> Bool {
        RandomStream(seed: seed, step: UInt64(epoch), stream: flipStream).word(index) >> 31 == 1
    }

    /// Three standard normal numbers for example `index`, by Box-Muller on
    /// Philox block `index` of the PCA stream, words `(w0, w1, w2, w3)`:
    /// `u1 = ((w0 >> 8) + 1) 2^-24` (in (0, 1], so the log is finite),
    /// `u2 = (w1 >> 8) 2^-24`, `z0 = sqrt(-2 ln u1) cos(2 pi u2)`,
    /// `z1 = sqrt(-2 ln u1) sin(2 pi u2)`, and `z2` the cosine from `(w2, w3)`.
    public static func normals(seed: UInt64, epoch: Int, index: Int) -> (Double, Double, Double) {
        let words = RandomStream(seed: seed, step: UInt64(epoch), stream: pcaStream).block(index)
        let first = boxMuller(words.0, words.1)
        return (first.0, first.1, boxMuller(words.2, words.3).0)
    }

    /// Two standard normal numbers from two 32-bit words (see ``normals(seed:epoch:index:)``).
    public static func boxMuller(_ a: UInt32, _ b: UInt32) -> (Double, Double) {
        let u1 = Double((a >> 8) + 1) * (1.0 / 16_777_216.0)
        let u2 = Double(b >> 8) * (1.0 / 16_777_216.0)
        let radius = (-2 * log(u1)).squareRoot()
        return (radius * cos(2 * Double.pi * u2), radius * sin(2 * Double.pi * u2))
    }

    /// The example order of an epoch: a Fisher-Yates shuffle of `0..<count`
    /// driven by the shuffle stream. Step `k` (for `k` in `0..<count - 1`) takes
    /// `j = count - 1 - k`, draws `u = word(2k) << 32 | word(2k + 1)` and swaps
    /// positions `j` and `r = (u * (j + 1)) >> 64` (the high word of the 128-bit product).
    public static func permutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        permutation(count: count, stream: RandomStream(seed: seed, step: UInt64(epoch), stream: shuffleStream))
    }

    /// The training split's examples in holdout order (the same Fisher-Yates
    /// shuffle on the holdout stream, step 0): the first N validate.
    public static func holdoutPermutation(count: Int, seed: UInt64) -> [Int] {
        permutation(count: count, stream: RandomStream(seed: seed, step: 0, stream: holdoutStream))
    }

    private static func permutation(count: Int, stream: RandomStream) -> [Int] {
        var order = Array(0..<count)
        guard count > 1 else { return order }
        var block = stream.block(0)
        for k in 0..<(count - 1) {
            // Two draws per Philox block: words 2k, 2k+1 are the block's first or second pair.
            if k % 2 == 0 && k > 0 { block = stream.block(k / 2) }
            let (high, low) = k % 2 == 0 ? (block.0, block.1) : (block.2, block.3)
            let u = UInt64(high) << 32 | UInt64(low)
            let j = count - 1 - k
            let r = Int(u.multipliedFullWidth(by: UInt64(j + 1)).high)
            order.swapAt(j, r)
        }
        return order
    }
}
