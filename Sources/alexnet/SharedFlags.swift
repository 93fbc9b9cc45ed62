import AlexNetKit
import ArgumentParser

// The flags several commands share, each declared once: one spelling, one
// default, one check. Where the flag's effect depends on what the command
// writes or prints, the command words its help (`ForceHelp`, `QuietHelp`);
// ArgumentParser builds the help from a default instance, so the wording is a
// static member of the command that the group is generic over.

/// What a command's `--force` replaces, in its own words.
protocol ForceHelp {
    /// The help of `--force`: `Replace the --output file if it exists.`
    static var forceHelp: String { get }
}

/// `--force`: replace what the command would otherwise refuse to overwrite.
/// Nothing that exists is replaced without it (Interop/OutputFiles.swift,
/// Docs/reliability.md). In `trace`, `check`, `train`, `experiment`,
/// `weights init`, `weights convert`, `data grid` and `data mean`.
struct ForceFlag<Command: ForceHelp>: ParsableArguments {
    /// True when `--force` is given.
    @Flag(name: .customLong("force"), help: ArgumentHelp(Command.forceHelp))
    var isSet = false
}

/// What a command's `--quiet` leaves out, in its own words.
protocol QuietHelp {
    /// The help of `--quiet`: `Print only the verdict line.`
    static var quietHelp: String { get }
}

/// `--quiet`: print only the result, no progress (`check`, `train`).
struct QuietFlag<Command: QuietHelp>: ParsableArguments {
    /// True when `--quiet` is given.
    @Flag(name: .customLong("quiet"), help: ArgumentHelp(Command.quietHelp))
    var isSet = false
}

/// `--resize S`: rescale each image so its shorter side is S pixels, then
/// keep the central square; nil when not given, where the command takes
/// ``PipelineDefaults/resize(storedSize:inputSide:)`` (256 for image folders).
/// In `train`, `data mean` and `data grid`. A size outside
/// 1...``InputLimits/imageSide`` exits 64.
struct ResizeOption: ParsableArguments {
    /// The shorter side, as given.
    @Option(name: .customLong("resize"),
            help: ArgumentHelp("Rescale so the shorter side is this many pixels, then keep the central square "
                               + "(default: 256 for image folders, about 8/7 of a smaller input; none for data sets of one image size)."))
    var side: Int?

    func validate() throws { try checkRange(side, 1...InputLimits.imageSide, "--resize") }
}

/// What a command's `--dtype` sets, in its own words.
protocol DTypeHelp {
    /// The help of `--dtype`: `Element type: f32 or f64.`
    static var dtypeHelp: String { get }
}

/// `--dtype f32|f64`: the element type a command computes or writes in
/// (`trace`, `summary`, `weights init`, `weights convert`); f32 when not given.
struct DTypeOption<Command: DTypeHelp>: ParsableArguments {
    /// The element type, as given.
    @Option(name: .customLong("dtype"), help: ArgumentHelp(Command.dtypeHelp))
    var value: ElementType = .f32
}
