/// The project's version, printed by `alexnet --version` and written by the
/// trace producer field. Semantic: the minor number grows with each landed
/// capability; file formats carry their own version numbers.
public enum AlexNetVersion {
    /// `major.minor.patch`.
    public static let current = "0.9.0"
}
