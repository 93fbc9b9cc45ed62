import Foundation
import XCTest
@testable import AlexNetKit

/// The rule that replaces an OpenBLAS fallback core, and the core this process runs.
final class BLASCoreTests: XCTestCase {
    private func replacement(_ core: String, _ level: CPUVectorLevel, user: String? = nil) -> String? {
        BLASCoreChoice.replacement(openBLASCore: core, cpuLevel: level, userCoreType: user)
    }

    func testPrescottOnAnAVX512CPUBecomesSkylakeX() {
        // OpenBLAS 0.3.21 on Intel family 6 model 207 (AVX-512) picks Prescott.
        XCTAssertEqual(replacement("Prescott", .avx512), "SkylakeX")
    }

    func testFallbacksBecomeTheCoreOfTheCPUsLevelAndNoHigher() {
        XCTAssertEqual(replacement("Prescott", .avx2), "Haswell")
        XCTAssertEqual(replacement("Nehalem", .avx2), "Haswell")
        XCTAssertEqual(replacement("Sandybridge", .avx2), "Haswell")
        XCTAssertEqual(replacement("Sandybridge", .avx512), "SkylakeX")
        XCTAssertEqual(replacement("Haswell", .avx512), "SkylakeX")
        XCTAssertEqual(replacement("Core2", .avx), "Sandybridge")
    }

    func testCoresThatFitTheCPUAreKept() {
        XCTAssertNil(replacement("Zen", .avx2))
        XCTAssertNil(replacement("Haswell", .avx2))
        XCTAssertNil(replacement("SkylakeX", .avx512))
        XCTAssertNil(replacement("Cooperlake", .avx512))
        XCTAssertNil(replacement("SapphireRapids", .avx512))
        XCTAssertNil(replacement("Prescott", .sse3), "an SSE3-only CPU has nothing better")
    }

    func testACoreAboveTheCPUIsNeverChosen() {
        // A user-forced AVX-512 core on an AVX2 CPU is the user's business; the rule never goes up past the CPU.
        XCTAssertNil(replacement("SkylakeX", .avx2))
        for level in [CPUVectorLevel.unknown, .sse3, .avx, .avx2, .avx512] {
            for core in ["Prescott", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX"] {
                if let chosen = replacement(core, level) {
                    XCTAssertLessThanOrEqual(BLASCoreChoice.level(ofCore: chosen)!, level, "\(core) on \(level)")
                }
            }
        }
    }

    func testTheUsersCoreTypeAlwaysWins() {
        XCTAssertNil(replacement("Prescott", .avx512, user: "Prescott"))
        XCTAssertNil(replacement("Haswell", .avx512, user: "Haswell"))
        XCTAssertEqual(replacement("Prescott", .avx512, user: ""), "SkylakeX", "an empty variable counts as unset")
    }

    func testUnknownCoresAndCPUsAreLeftAlone() {
        XCTAssertNil(replacement("ARMV8", .unknown))
        XCTAssertNil(replacement("NEOVERSEN1", .unknown))
        XCTAssertNil(replacement("SomeFutureCore", .avx512))
    }

    /// The process's own choice: on a CPU with AVX2 or more, the kernels need
    /// at least AVX2 unless the user set OPENBLAS_CORETYPE.
    func testThisProcessRunsKernelsThatFitTheCPU() {
        let core = BLAS.core
        XCTAssertFalse(core.name.isEmpty)
        XCTAssertEqual(core.name, String(cString: BLAS.currentCoreName()))
        let user = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? ""
        if user.isEmpty, core.cpuVectorLevel >= .avx2, let level = BLASCoreChoice.level(ofCore: core.name) {
            XCTAssertGreaterThanOrEqual(level, .avx2, core.description)
            XCTAssertNotEqual(core.selection, .environment)
        }
        if !user.isEmpty { XCTAssertEqual(core.selection, .environment) }
    }
}

/// `alexnet blas` as a separate process: the variable wins, and the in-process
/// switch gives exactly the arithmetic of the core named in the variable.
final class BLASCoreCLITests: XCTestCase {
    private let directory = FileManager.default.temporaryDirectory

    private func blas(_ arguments: [String], coreType: String?) throws -> [String: String] {
        let result = try CLI.run(["blas", "--json"] + arguments, in: directory,
                                 environment: ["OPENBLAS_CORETYPE": coreType])
        XCTAssertEqual(result.status, 0, result.error)
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: String]
        return try XCTUnwrap(object, result.output)
    }

    func testTheUsersCoreTypeWinsInTheTool() throws {
        let report = try blas([], coreType: "Prescott")
        XCTAssertEqual(report["core"], "Prescott")
        XCTAssertEqual(report["selection"], "OPENBLAS_CORETYPE")
    }

    func testWithoutTheVariableTheToolRunsKernelsThatFitTheCPU() throws {
        let report = try blas([], coreType: nil)
        let level = try XCTUnwrap(report["cpu_vector_level"])
        if level == "AVX-512" || level == "AVX2", let core = report["core"], let coreLevel = BLASCoreChoice.level(ofCore: core) {
            XCTAssertGreaterThanOrEqual(coreLevel, .avx2, "\(report)")
        }
    }

    func testSwitchingInProcessEqualsSettingTheVariable() throws {
        guard CPUVectorLevel.current >= .avx2 else { throw XCTSkip("the CPU has no AVX2: Haswell kernels cannot run") }
        let switched = try blas(["--fingerprint", "--switch-to", "Haswell"], coreType: nil)
        let variable = try blas(["--fingerprint"], coreType: "Haswell")
        XCTAssertEqual(switched["core"], "Haswell")
        XCTAssertEqual(variable["core"], "Haswell")
        XCTAssertEqual(switched["fingerprint"], variable["fingerprint"])
        // And back: Prescott's arithmetic through the switch equals Prescott's through the variable.
        let prescottSwitched = try blas(["--fingerprint", "--switch-to", "Prescott"], coreType: nil)
        let prescottVariable = try blas(["--fingerprint"], coreType: "Prescott")
        XCTAssertEqual(prescottSwitched["core"], "Prescott")
        XCTAssertEqual(prescottSwitched["fingerprint"], prescottVariable["fingerprint"])
    }
}
