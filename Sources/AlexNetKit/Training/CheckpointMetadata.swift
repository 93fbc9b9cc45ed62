/// A training checkpoint's `__metadata__` (the list is ``TrainingCheckpoint``'s
/// summary): its keys once, for writing and reading, through
/// ``StringMetadataEncoder`` and ``StringMetadataDecoder``.
///
/// The values holding JSON (`config`, `spec`, `class_names`, `progress`) stay
/// text here: the checkpoint parses each with the strict JSON decoder, which
/// locates an error inside it by line and column. Keys this version does not
/// define are ignored, as they always were.
struct CheckpointMetadata: Codable, Equatable {
    /// ``TrainingCheckpoint/formatName``.
    var format = TrainingCheckpoint.formatName
    /// 1, the one version so far.
    var version = 1
    /// The resolved ``TrainingConfiguration`` as JSON.
    var config: String
    /// The ``ModelSpec`` as JSON.
    var spec: String
    /// A JSON array of the class names.
    var classNames: String
    /// ``TrainingProgress`` as one line of JSON.
    var progress: String
    /// The JSON-lines log written so far, each line ending in a newline.
    var log: String
    /// The OpenBLAS core that computed the checkpoint; absent in checkpoints written before it was recorded.
    var blasCore: String?

    enum CodingKeys: String, CodingKey {
        case format, version, config, spec, classNames = "class_names", progress, log, blasCore = "blas_core"
    }
}
