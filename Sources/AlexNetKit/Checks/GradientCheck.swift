/// How well an analytic gradient agrees with central finite differences.
public struct GradientCheckResult: CustomStringConvertible {
    /// What was differentiated, e.g. `"conv1 input"` or `"conv1.weight"`.
    public var tensor: String
    /// How many elements were perturbed.
    public var checked: Int
    /// The largest `|analytic - numeric| / max(|analytic|, |numeric|, floor)`,
    /// where `floor` is 1e-6 times the largest analytic magnitude in the tensor
    /// (so exact zeros compare absolutely, not relatively).
    public var maxRelativeError: Double
    /// Flat index of the element with that error.
    public var worstIndex: Int
    public var analytic: Double
    public var numeric: Double

    public var description: String {
        "\(tensor): \(checked) elements, max relative error \(maxRelativeError) at \(worstIndex) (analytic \(analytic), numeric \(numeric))"
    }
}

/// Finite-difference gradient checks in Float64, written once and used for every layer.
///
/// The scalar checked is `L = sum(output * R)` for a fixed random projection `R`
/// (uniform in [-1, 1], seeded), so every output element contributes with a
/// different weight and a transposed or misplaced gradient cannot cancel out.
/// Derivatives are central differences `(L(x + h) - L(x - h)) / 2h`, whose error
/// is O(h^2) from truncation plus O(eps * |L| / h) from rounding: about 1e-10
/// relative for h = 1e-5 on well-scaled inputs.
public enum GradientCheck {
    /// Checks one function's gradient: `function` maps the tensor to a scalar,
    /// `analytic` is the claimed gradient at `point`.
    /// - Parameter maxElements: at most this many elements are perturbed, spread evenly.
    public static func check(
        name: String, at point: Tensor<Double>, analytic: Tensor<Double>,
        step h: Double = 1e-5, maxElements: Int = 512,
        function: (Tensor<Double>) throws -> Double
    ) throws -> GradientCheckResult {
        try analytic.requireShape(point.shape, operation: "GradientCheck(\(name))", argument: "analytic gradient")
        let count = point.count
        let stride = max(1, count / max(1, maxElements))
        let scale = analytic.storage.reduce(0) { max($0, abs($1)) }
        let floor = max(scale * 1e-6, Double.leastNormalMagnitude)
        var result = GradientCheckResult(tensor: name, checked: 0, maxRelativeError: 0, worstIndex: 0, analytic: 0, numeric: 0)
        var x = point
        for index in Swift.stride(from: 0, to: count, by: stride) {
            let original = x.storage[index]
            x.withUnsafeMutableBufferPointer { $0[index] = original + h }
            let plus = try function(x)
            x.withUnsafeMutableBufferPointer { $0[index] = original - h }
            let minus = try function(x)
            x.withUnsafeMutableBufferPointer { $0[index] = original }
            let numeric = (plus - minus) / (2 * h)
            let exact = analytic.storage[index]
            let error = abs(exact - numeric) / max(abs(exact), abs(numeric), floor)
            result.checked += 1
            if error > result.maxRelativeError || result.checked == 1 {
                result.maxRelativeError = error
                result.worstIndex = index
                result.analytic = exact
                result.numeric = numeric
            }
        }
        return result
    }

    /// Checks a layer's input gradient and every parameter gradient.
    ///
    /// Runs `forward` then `backward` with the projection `R` as output gradient,
    /// then perturbs the input and each parameter. The layer must be
    /// deterministic under `context` (dropout keys on the context's step, so it is).
    /// - Returns: one result for the input, then one per parameter, in order.
    public static func check<L: Layer>(
        layer: L, input: Tensor<Double>, context: PassContext = PassContext(),
        seed: UInt64 = 7, step h: Double = 1e-5, maxElements: Int = 512
    ) throws -> [GradientCheckResult] where L.Element == Double {
        let output = try layer.forward(input, context: context)
        let projection = randomUniform(shape: output.shape, seed: seed)
        let inputGradient = try layer.backward(projection, context: context)
        let parameterGradients = layer.parameters.map(\.gradient)

        func loss(_ x: Tensor<Double>) throws -> Double {
            let y = try layer.forward(x, context: context)
            return compensatedDot(y.storage, projection.storage)
        }

        var results = [try check(name: "\(layer.name) input", at: input, analytic: inputGradient,
                                 step: h, maxElements: maxElements, function: loss)]
        for (parameter, gradient) in zip(layer.parameters, parameterGradients) {
            let original = parameter.value
            results.append(try check(name: "\(layer.name).\(parameter.name)", at: original, analytic: gradient,
                                     step: h, maxElements: maxElements) { value in
                parameter.value = value
                defer { parameter.value = original }
                return try loss(input)
            })
        }
        return results
    }

    /// `sum(a[i] * b[i])` with Neumaier's compensated summation: the rounding of a
    /// long plain sum would otherwise be amplified by 1/2h in the finite difference.
    public static func compensatedDot(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0, compensation = 0.0
        for (x, y) in zip(a, b) {
            let term = x * y
            let next = sum + term
            compensation += abs(sum) >= abs(term) ? (sum - next) + term : (term - next) + sum
            sum = next
        }
        return sum + compensation
    }

    /// A tensor of uniform numbers in [-1, 1) drawn from ``RandomStream`` (seed, step 0, stream 0xC0FFEE).
    public static func randomUniform(shape: Shape, seed: UInt64) -> Tensor<Double> {
        let stream = RandomStream(seed: seed, step: 0, stream: 0xC0FFEE)
        var t = Tensor<Double>(shape: shape)
        t.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = 2 * stream.uniform(i) - 1 }
        }
        return t
    }
}
