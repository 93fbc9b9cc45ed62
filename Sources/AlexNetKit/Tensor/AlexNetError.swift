/// Every error the library throws on purpose: a value whose `description`
/// names what to fix (the file and key, the layer and argument, the option and
/// its limit) in one line. The command line maps all of them to exit status 1
/// and prints the description, in one place (`Sources/alexnet/CommandErrors.swift`);
/// `alexnet check` maps them to 2, "the trace is unusable".
public protocol AlexNetError: Error, CustomStringConvertible {}

extension ShapeError: AlexNetError {}
extension ConfigurationError: AlexNetError {}
extension NonFiniteError: AlexNetError {}
extension ModelSpecError: AlexNetError {}
extension TensorFileError: AlexNetError {}
extension WeightsError: AlexNetError {}
extension ImageError: AlexNetError {}
extension DataError: AlexNetError {}
extension TraceError: AlexNetError {}
extension OutputFileError: AlexNetError {}
extension NonFiniteTrainingError: AlexNetError {}
extension JSONSyntaxError: AlexNetError {}
