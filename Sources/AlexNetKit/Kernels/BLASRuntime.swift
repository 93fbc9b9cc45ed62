import CBLASCore
import Foundation

/// Vector instruction sets a CPU and its operating system both support, in
/// increasing order; what decides which OpenBLAS kernels the CPU can run.
public enum CPUVectorLevel: Int, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Not an x86-64 CPU, or one that could not be read (ARM is reported so).
    case unknown = 0
    /// SSE3: the x86-64 baseline of OpenBLAS's generic 64-bit kernels (Prescott).
    case sse3 = 1
    /// AVX (Sandy Bridge kernels).
    case avx = 2
    /// AVX2 and FMA3 (Haswell and Zen kernels).
    case avx2 = 3
    /// AVX-512 F, CD, BW, DQ and VL with the zmm state enabled (SkylakeX kernels).
    case avx512 = 4

    public static func < (a: CPUVectorLevel, b: CPUVectorLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .unknown: return "unknown"
        case .sse3: return "SSE3"
        case .avx: return "AVX"
        case .avx2: return "AVX2"
        case .avx512: return "AVX-512"
        }
    }

    /// What this process's CPU supports (CPUID and XGETBV; `.unknown` off x86).
    public static var current: CPUVectorLevel {
        CPUVectorLevel(rawValue: Int(alexnet_cpu_vector_level())) ?? .unknown
    }
}

/// Which OpenBLAS core (set of kernels) runs, and how it was chosen.
///
/// Results are bitwise reproducible for a given BLAS core and any thread count;
/// two cores (e.g. Haswell and SkylakeX) give results that differ in the last
/// bits, so a report or checkpoint names the core its numbers came from.
public struct BLASCore: Sendable, Codable, Equatable, CustomStringConvertible {
    /// How ``name`` came to run.
    public enum Selection: String, Sendable, Codable {
        /// OpenBLAS's own detection picked a core that fits the CPU.
        case openBLAS = "openblas"
        /// The user's `OPENBLAS_CORETYPE` (always obeyed).
        case environment = "OPENBLAS_CORETYPE"
        /// OpenBLAS fell back to kernels below what the CPU supports, and this
        /// library re-ran its selection with the right core (``BLASCoreChoice``).
        case replacedFallback = "replaced-fallback"
    }

    /// The core running now, as OpenBLAS names it (`openblas_get_corename()`), e.g. "SkylakeX".
    public var name: String
    /// How it was chosen.
    public var selection: Selection
    /// The core OpenBLAS picked by itself when it loaded (equal to ``name`` unless replaced).
    public var openBLASChoice: String
    /// What the CPU supports.
    public var cpuVectorLevel: CPUVectorLevel
    /// The CPU's brand string, e.g. "AMD EPYC 9R14 96-Core Processor" (empty where unknown).
    public var cpu: String
    /// OpenBLAS's configuration string, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...".
    public var configuration: String

    /// One line for reports: "SkylakeX (OpenBLAS picked Prescott, below the CPU's AVX-512; replaced)".
    public var description: String {
        switch selection {
        case .openBLAS: return "\(name) (OpenBLAS's choice for this \(cpuVectorLevel) CPU)"
        case .environment: return "\(name) (set by OPENBLAS_CORETYPE)"
        case .replacedFallback:
            return "\(name) (OpenBLAS picked \(openBLASChoice), below this CPU's \(cpuVectorLevel); replaced)"
        }
    }
}

/// The rule that decides whether to replace OpenBLAS's choice of core.
///
/// A user's `OPENBLAS_CORETYPE` always wins. Otherwise OpenBLAS's choice stands
/// unless its kernels need less than the CPU supports (a fallback, such as
/// OpenBLAS 0.3.21's "Prescott" on Intel models newer than its table); then the
/// core for the CPU's level is chosen: SkylakeX for AVX-512, Haswell for AVX2,
/// Sandybridge for AVX. A core whose instructions the CPU lacks is never chosen,
/// and a core this rule does not know (e.g. an ARM core) is left alone.
public enum BLASCoreChoice {
    /// The instruction level each known x86 core of OpenBLAS needs.
    public static func level(ofCore name: String) -> CPUVectorLevel? {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return .avx512
        case "haswell", "zen": return .avx2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return .avx
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "nano", "barcelona",
             "bobcat", "opteron", "opteron_sse3", "katmai", "coppermine", "northwood", "banias", "athlon":
            return .sse3
        default: return nil
        }
    }

    /// The core for a CPU level (names as `OPENBLAS_CORETYPE` accepts them), nil below AVX.
    public static func core(for level: CPUVectorLevel) -> String? {
        switch level {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .avx: return "Sandybridge"
        case .sse3, .unknown: return nil
        }
    }

    /// The core to switch to, or nil to keep OpenBLAS's choice.
    /// - Parameters:
    ///   - openBLASCore: what OpenBLAS picked, e.g. "Prescott".
    ///   - cpuLevel: what the CPU supports.
    ///   - userCoreType: the value of `OPENBLAS_CORETYPE`, nil or empty when unset.
    public static func replacement(openBLASCore: String, cpuLevel: CPUVectorLevel,
                                   userCoreType: String?) -> String? {
        if let userCoreType, !userCoreType.isEmpty { return nil }
        guard let current = level(ofCore: openBLASCore), current < cpuLevel,
              let better = core(for: cpuLevel), let betterLevel = level(ofCore: better),
              betterLevel > current, betterLevel <= cpuLevel else { return nil }
        return better
    }
}

/// OpenBLAS configuration shared by every matrix product.
public enum BLAS {
    /// The core that runs every matrix product of this process, chosen once,
    /// before the first product (see ``BLASCoreChoice``), with OpenBLAS set to
    /// one thread.
    ///
    /// OpenBLAS's own threading changes results bitwise with the thread count
    /// (measured: up to 70% of sgemm outputs differ between 1 and 2 threads on
    /// conv1's shapes). We run it single-threaded and parallelise over a fixed
    /// partition ourselves, so results never depend on the thread count.
    public static let core: BLASCore = configure()

    /// Forces the one-time configuration (core choice, one BLAS thread).
    @inlinable @inline(__always)
    public static func ensureConfigured() { _ = core }

    private static func configure() -> BLASCore {
        let cpuLevel = CPUVectorLevel.current
        let user = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        let picked = String(cString: alexnet_blas_corename())
        var selection: BLASCore.Selection = (user?.isEmpty == false) ? .environment : .openBLAS
        if let better = BLASCoreChoice.replacement(openBLASCore: picked, cpuLevel: cpuLevel, userCoreType: user),
           alexnet_blas_can_switch_core() != 0 {
            alexnet_blas_switch_core(better)
            if String(cString: alexnet_blas_corename()) != picked { selection = .replacedFallback }
        }
        alexnet_blas_set_threads(1)
        return BLASCore(name: String(cString: alexnet_blas_corename()), selection: selection,
                        openBLASChoice: picked, cpuVectorLevel: cpuLevel, cpu: cpuBrand(),
                        configuration: String(cString: alexnet_blas_config()))
    }

    /// Re-runs OpenBLAS's core selection with `OPENBLAS_CORETYPE=name` (for
    /// tests and tools that compare cores; call it before the process's first
    /// matrix product, as ``core`` then still describes the earlier choice).
    /// - Returns: the core OpenBLAS runs afterwards, or nil if this OpenBLAS
    ///   cannot switch (a build for one fixed core).
    @discardableResult
    public static func switchCoreForTesting(to name: String) -> String? {
        guard alexnet_blas_can_switch_core() != 0 else { return nil }
        alexnet_blas_switch_core(name)
        alexnet_blas_set_threads(1)
        return String(cString: alexnet_blas_corename())
    }

    /// The name of the core OpenBLAS runs at this moment (after any switch).
    public static func currentCoreName() -> UnsafePointer<CChar> { alexnet_blas_corename() }

    /// The CPU's brand string, e.g. "Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz".
    public static func cpuBrand() -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        alexnet_cpu_brand(&buffer, Int32(buffer.count))
        return String(cString: buffer)
    }
}
