import XCTest
@testable import AlexNetKit

/// Helpers shared by the convolution, linear and im2col tests. A namespace, so
/// the names cannot collide with helpers other test files define.
enum GemmLayerTesting {
    /// Uniform numbers in [-1, 1) from the seeded generator, in any element type
    /// (Float32 values are the Float64 ones rounded to nearest).
    static func random<T: TensorElement>(_ shape: Shape, seed: UInt64, as: T.Type = T.self) -> Tensor<T> {
        Tensor<T>(converting: GradientCheck.randomUniform(shape: shape, seed: seed))
    }

    /// Sets every parameter of `layer` to seeded random values (seed, seed + 1, ...).
    static func randomise<L: Layer>(_ layer: L, seed: UInt64) {
        for (i, parameter) in layer.parameters.enumerated() {
            parameter.value = random(parameter.value.shape, seed: seed + UInt64(i))
        }
    }

    /// The finite-difference step for convolution and linear layers.
    ///
    /// Both layers are affine in each single input or parameter element (the
    /// others held fixed), so the central difference has no truncation error at
    /// any step: what remains is rounding in the loss, about eps * |L| / h. A
    /// step of 1e-3 instead of the checker's default 1e-5 divides that by 100,
    /// which keeps small gradient elements of larger layers well inside 1e-6
    /// relative, without making the check any less strict.
    static let affineStep = 1e-3

    /// Runs the finite-difference check on `layer` at `input`, asserts every
    /// result is below 1e-6, prints each error (for the report) and returns the worst.
    @discardableResult
    static func assertGradientCheck<L: Layer>(_ layer: L, input: Tensor<Double>, maxElements: Int = 512,
                                              file: StaticString = #filePath, line: UInt = #line) throws -> Double
    where L.Element == Double {
        let results = try GradientCheck.check(layer: layer, input: input, step: affineStep, maxElements: maxElements)
        XCTAssertEqual(results.count, 1 + layer.parameters.count, "one result per input and parameter", file: file, line: line)
        var worst = 0.0
        for result in results {
            XCTAssertGreaterThan(result.checked, 0, "\(result.tensor): nothing was checked", file: file, line: line)
            XCTAssertLessThan(result.maxRelativeError, 1e-6, result.description, file: file, line: line)
            print("gradient check \(result)")
            worst = max(worst, result.maxRelativeError)
        }
        return worst
    }

    /// Asserts that `body` throws an error of type `E` and returns it.
    static func expectError<E: Error, R>(_ type: E.Type, file: StaticString = #filePath, line: UInt = #line,
                                         _ body: () throws -> R) -> E? {
        do {
            _ = try body()
            XCTFail("expected \(E.self), nothing was thrown", file: file, line: line)
        } catch let error as E {
            return error
        } catch {
            XCTFail("expected \(E.self), got \(Swift.type(of: error)): \(error)", file: file, line: line)
        }
        return nil
    }

    /// Asserts that `actual` equals the literal `expected` values exactly (the
    /// hand-computed cases use small integers and halves, exact in binary).
    static func assertExactly<T: TensorElement>(_ actual: Tensor<T>, _ shape: Shape, _ expected: [T],
                                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, shape, "shape", file: file, line: line)
        XCTAssertEqual(actual.storage, expected, file: file, line: line)
    }

    /// The largest `|a - b| / max(1, |b|)` over two same-shaped tensors.
    static func maxScaledDifference<T: TensorElement>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
        precondition(a.shape == b.shape)
        var worst = 0.0
        for (x, y) in zip(a.storage, b.storage) {
            worst = max(worst, Double(abs(x - y)) / max(1, Double(abs(y))))
        }
        return worst
    }

    /// Element-wise absolute value (for rounding-error bounds: the same layer run
    /// on |x|, |w|, |b| gives `sum |w x| + |b|` for every output).
    static func absolute<T: TensorElement>(_ t: Tensor<T>) -> Tensor<T> {
        try! Tensor(shape: t.shape, values: t.storage.map { abs($0) })
    }
}
