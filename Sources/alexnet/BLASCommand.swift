import AlexNetKit
import ArgumentParser
import Foundation

/// `alexnet blas`: which OpenBLAS core runs, why, and a fingerprint of its arithmetic.
struct BLASCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas",
        abstract: "Show which OpenBLAS kernels (core) run on this CPU and why.",
        discussion: """
        OpenBLAS picks its kernels when it loads. Debian's OpenBLAS 0.3.21 falls
        back to its generic SSE3 "Prescott" kernels on CPUs newer than its
        table (e.g. Intel family 6 model 207), 4-5x slower than its AVX-512
        ones. This library then re-runs OpenBLAS's selection with the core for
        the CPU's instructions (SkylakeX for AVX-512, Haswell for AVX2,
        Sandybridge for AVX) before the first matrix product. A user's own
        OPENBLAS_CORETYPE always wins. Results are bitwise reproducible for one
        core and any thread count; different cores differ in the last bits
        (Docs/performance.md).

        --fingerprint multiplies two fixed 257x263 and 263x259 matrices with
        sgemm and prints a hash of the result's bits: equal fingerprints mean
        the same arithmetic.

        Examples:
          alexnet blas
          OPENBLAS_CORETYPE=Haswell alexnet blas --fingerprint
        """
    )

    @Flag(help: "Also print a hash of a fixed sgemm product's bits.")
    var fingerprint = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Option(help: ArgumentHelp("Switch to this core after the automatic choice (for tests).", visibility: .hidden))
    var switchTo: String?

    func run() throws {
        let core = BLAS.core
        var running = core.name
        if let switchTo {
            guard let now = BLAS.switchCoreForTesting(to: switchTo) else {
                throw CommandFailure(message: "this OpenBLAS is built for one core and cannot switch")
            }
            running = now
        }
        let hash = fingerprint ? Self.gemmFingerprint() : nil
        if json {
            var object: [String: String] = [
                "core": running, "selection": core.selection.rawValue, "openblas_choice": core.openBLASChoice,
                "cpu": core.cpu, "cpu_vector_level": core.cpuVectorLevel.description, "configuration": core.configuration,
            ]
            if let hash { object["fingerprint"] = hash }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("core:          \(running)")
            print("how chosen:    \(core.description)")
            print("OpenBLAS:      \(core.configuration)")
            print("CPU:           \(core.cpu.isEmpty ? "unknown" : core.cpu) (\(core.cpuVectorLevel))")
            if let hash { print("fingerprint:   \(hash)") }
        }
    }

    /// FNV-1a over the bits of a fixed single-precision product.
    static func gemmFingerprint() -> String {
        let (m, k, n) = (257, 263, 259)
        let stream = RandomStream(seed: 7, step: 0, stream: 0)
        let a = (0..<(m * k)).map { Float(stream.uniform($0) - 0.5) }
        let b = (0..<(k * n)).map { Float(stream.uniform(m * k + $0) - 0.5) }
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    Float.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1,
                               a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n, beta: 0,
                               c: c.baseAddress!, ldc: n)
                }
            }
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for value in c {
            hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01b3
        }
        return String(format: "%016llx", hash)
    }
}
