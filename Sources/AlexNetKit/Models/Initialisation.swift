/// How a network's weights start. Biases start at the constant their
/// ``LayerSpec`` names (the paper: 1 in conv2, conv4, conv5, fc6, fc7; 0 elsewhere).
public enum Initialisation: Equatable, Sendable {
    /// Every weight from N(0, std^2); the paper uses std 0.01 (section 5).
    case gaussian(std: Double)
    /// He et al. (2015): N(0, 2 / fanIn), fanIn = inputs per output (`C/groups * kh * kw` or `in`).
    /// Trains small ReLU nets from scratch without tuning a std per layer.
    case he

    /// The paper's choice: N(0, 0.01^2).
    public static let paper = Initialisation.gaussian(std: 0.01)

    /// Standard normal draws for element `i` of a weight: Box-Muller on words
    /// `2i` and `2i + 1` of the random stream, `sqrt(-2 ln(1 - u1)) * cos(2 pi u2)`
    /// with `u = word * 2^-24` after dropping the low 8 bits (Docs/conventions.md).
    /// The stream is `(seed, step 0, stream 0x4000_0000 + 2 * layerIndex + parameterIndex)`,
    /// so every weight is a pure function of the seed and its position.
    public static func standardNormal(count: Int, seed: UInt64, stream: UInt32) -> [Double] {
        let random = RandomStream(seed: seed, step: 0, stream: stream)
        return (0..<count).map { i in
            let u1 = random.uniform(2 * i), u2 = random.uniform(2 * i + 1)
            return (-2 * Double.log(1 - u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
        }
    }

    /// The standard deviation for a weight with `fanIn` inputs per output.
    public func standardDeviation(fanIn: Int) -> Double {
        switch self {
        case .gaussian(let std): return std
        case .he: return (2 / Double(max(1, fanIn))).squareRoot()
        }
    }
}
