// swift-tools-version:5.10
// A CPU reference implementation of AlexNet (Krizhevsky, Sutskever, Hinton, 2012).
import PackageDescription

let package = Package(
    name: "alexnet-swift",
    products: [
        .library(name: "AlexNetKit", targets: ["AlexNetKit"]),
        .executable(name: "alexnet", targets: ["alexnet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // CBLAS from OpenBLAS: `apt-get install libopenblas-dev`.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // CPU features and OpenBLAS's core selection (Kernels/BLASRuntime.swift).
        .target(
            name: "CBLASCore",
            linkerSettings: [.linkedLibrary("openblas")]
        ),
        // Vector square roots for LRN (Swift's SIMD squareRoot runs lane by lane),
        // as wide as the CPU allows (CBLASCore reads its vector level).
        .target(name: "CVectorMath", dependencies: ["CBLASCore"]),
        // zlib (raw deflate, crc32) for .npz: `apt-get install zlib1g-dev`.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // Thin C layer over libjpeg; setjmp/longjmp error handling must live in C.
        .target(
            name: "CJPEG",
            linkerSettings: [.linkedLibrary("jpeg")]
        ),
        .target(
            name: "AlexNetKit",
            dependencies: [
                "CBLAS",
                "CBLASCore",
                "CJPEG",
                "CVectorMath",
                "CZlib",
                .product(name: "Numerics", package: "swift-numerics"),
            ]
        ),
        .executableTarget(
            name: "alexnet",
            dependencies: [
                "AlexNetKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The parsers' fuzz harness (Docs/reliability.md): a replay tool in a plain
        // build, a libFuzzer binary when built by Docs/tools/fuzz.sh.
        .executableTarget(
            name: "alexnet-fuzz",
            dependencies: ["AlexNetKit"]
        ),
        .testTarget(
            name: "AlexNetKitTests",
            dependencies: ["AlexNetKit"]
        ),
    ]
)
