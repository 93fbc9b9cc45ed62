/// The one walk over a text's Unicode scalars that the writers of JSON
/// strings (`JSON.encode(string:)`) and of JUnit XML (`OracleReport`) share:
/// each writer gives only its table of replacements.
enum TextEscaping {
    /// `text` with every scalar for which `replacement` returns a string
    /// replaced by that string, and every other scalar kept as it is.
    static func escape(_ text: String, _ replacement: (Unicode.Scalar) -> String?) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let replaced = replacement(scalar) { out += replaced } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
