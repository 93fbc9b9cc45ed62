import XCTest
@testable import AlexNetKit

/// The two layer options the towers rely on: grouped LRN and sliced dropout masks.
final class TowerLayerTests: XCTestCase {
    func testGroupedLRNEqualsSeparateLRNsOnEachGroup() throws {
        let x = randomFloatTensor([2, 6, 3, 4], seed: 4)
        let grouped = try LocalResponseNorm<Float>(name: "lrn", size: 5, alpha: 0.1, beta: 0.75, k: 2, convention: .paper, groups: 2)
        let whole = try grouped.forward(x, context: PassContext())
        for group in 0..<2 {
            let alone = try LocalResponseNorm<Float>(name: "lrn", size: 5, alpha: 0.1, beta: 0.75, k: 2, convention: .paper)
            let part = try alone.forward(try x.slice(channels: group * 3..<(group + 1) * 3), context: PassContext())
            XCTAssertTrue(part.isBitwiseEqual(to: try whole.slice(channels: group * 3..<(group + 1) * 3)))
        }
        let ungrouped = try LocalResponseNorm<Float>(name: "lrn", size: 5, alpha: 0.1, beta: 0.75, k: 2, convention: .paper)
        XCTAssertFalse(whole.isBitwiseEqual(to: try ungrouped.forward(x, context: PassContext())),
                       "channel 2's window reaches channel 3 only without groups")
    }

    func testGroupedLRNGradientCheck() throws {
        let layer = try LocalResponseNorm<Double>(name: "lrn", size: 3, alpha: 0.2, beta: 0.75, k: 1, convention: .caffe, groups: 2)
        assertGradientsMatch(try GradientCheck.check(layer: layer, input: GradientCheck.randomUniform(shape: [2, 8, 2, 2], seed: 6)))
    }

    func testLRNChannelsMustDivideIntoGroups() throws {
        let layer = try LocalResponseNorm<Float>(name: "lrn1", alpha: 1e-4, convention: .paper, groups: 2)
        let error = captureError { try layer.forward(Tensor(shape: [1, 5, 2, 2]), context: PassContext()) } as? ShapeError
        XCTAssertEqual(error?.description, "lrn1: input has shape [1, 5, 2, 2], expected [N, C, H, W] with C divisible by 2 groups")
    }

    func testSlicedDropoutDrawsTheSameMaskElementsAsTheWholeLayer() throws {
        let whole = try Dropout<Float>(rate: 0.5, scaling: .paper, seed: 8, stream: 6)
        let wholeMask = whole.generatedMask(shape: [3, 10], step: 4)
        for tower in 0..<2 {
            let half = try Dropout<Float>(rate: 0.5, scaling: .paper, seed: 8, stream: 6, slice: (offset: tower * 5, rowLength: 10))
            let mask = half.generatedMask(shape: [3, 5], step: 4)
            XCTAssertTrue(mask.isBitwiseEqual(to: try wholeMask.slice(channels: tower * 5..<(tower + 1) * 5)))
        }
    }

    func testSliceThatDoesNotFitItsRowIsRefused() throws {
        let half = try Dropout<Float>(name: "drop6", rate: 0.5, scaling: .paper, slice: (offset: 5, rowLength: 10))
        let error = captureError { try half.forward(Tensor(shape: [2, 6]), context: PassContext(mode: .training)) } as? ShapeError
        XCTAssertEqual(error?.description,
                       "drop6: input has shape [2, 6], expected at most 5 elements per image (a slice at offset 5 of rows of 10)")
    }

    func testChannelSliceAndConcatenateAreInverse() throws {
        let x = randomFloatTensor([2, 5, 3, 2], seed: 1)
        let parts = [try x.slice(channels: 0..<2), try x.slice(channels: 2..<5)]
        XCTAssertEqual(parts[1].shape, [2, 3, 3, 2])
        XCTAssertTrue(try Tensor.concatenate(channels: parts).isBitwiseEqual(to: x))
        XCTAssertThrowsError(try x.slice(channels: 3..<6)) { XCTAssertTrue($0 is ShapeError) }
        XCTAssertThrowsError(try Tensor.concatenate(channels: [x, Tensor<Float>(shape: [2, 1, 3, 3])])) { XCTAssertTrue($0 is ShapeError) }
    }
}
