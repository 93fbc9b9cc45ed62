import AlexNetKit
import Foundation

// Two builds of one harness (Docs/reliability.md, Docs/tools/fuzz.sh):
// - fuzzing (`-D FUZZING -sanitize=fuzzer`): libFuzzer drives
//   `FuzzTarget.parse` for the target named by ALEXNET_FUZZ_TARGET;
// - plain (`swift build`): `alexnet-fuzz seeds DIR` writes the seed corpora,
//   `alexnet-fuzz run TARGET FILE...` replays inputs (crashes, regressions).

/// The target named by ALEXNET_FUZZ_TARGET, or a message listing them.
func selectedTarget() -> FuzzTarget {
    let name = ProcessInfo.processInfo.environment["ALEXNET_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data(("set ALEXNET_FUZZ_TARGET to one of: "
            + FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ") + "\n").utf8))
        exit(64)
    }
    return target
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

private let target = selectedTarget()

private func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    try? target.parse(bytes)
    return 0
}

/// SwiftPM links an executable's entry point as `<module>_main`; libFuzzer's
/// driver takes over from there.
@_cdecl("alexnet_fuzz_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var arguments = (0..<Int(argc)).map { String(cString: argv![$0]!) }
    // The target's input length unless the command line sets one.
    if !arguments.contains(where: { $0.hasPrefix("-max_len=") }) { arguments.insert("-max_len=\(target.maximumLength)", at: 1) }
    var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var count = Int32(arguments.count)
    return pointers.withUnsafeMutableBufferPointer { buffer in
        var vector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return LLVMFuzzerRunDriver(&count, &vector, fuzzOne)
    }
}
#else
@main
struct FuzzReplay {
    static func main() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "seeds" where arguments.count == 2:
            for (target, files) in try FuzzSeeds.make() {
                let directory = arguments[1] + "/" + target.rawValue
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name)) }
                print("\(target.rawValue): \(files.count) seed(s) in \(directory)")
            }
        case "run" where arguments.count >= 2:
            guard let target = FuzzTarget(rawValue: arguments[1]) else {
                print("unknown target \(arguments[1]); targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
                exit(64)
            }
            for path in arguments.dropFirst(2) {
                guard let data = FileManager.default.contents(atPath: path) else {
                    print("\(path): no such file")
                    exit(66)
                }
                let bytes = [UInt8](data)
                do {
                    try target.parse(bytes)
                    print("\(path): parsed")
                } catch {
                    print("\(path): refused: \(error)")
                }
            }
        default:
            print("usage: alexnet-fuzz seeds DIR | alexnet-fuzz run TARGET FILE...")
            print("targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
            exit(64)
        }
    }
}
#endif
