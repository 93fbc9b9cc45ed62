import Foundation

/// A data set could not be read: a missing or truncated file, a bad header, a
/// label out of range, an image that does not decode.
///
/// Carries what a user needs to find the problem: the file, the archive member
/// where there is one, the record (example) index and the byte offset where they
/// help, and the problem in words. The description joins them:
/// `data_batch_2.bin: record 17: label 12 is out of range 0...9 (at byte 52241)`.
///
/// Offsets count bytes from the start of the file, or of the archive member
/// (inflated); in a gzipped file they count bytes of the inflated data. The
/// description says which.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path (or the name given for in-memory bytes).
    public var file: String
    /// The member of a tar archive, e.g. `"cifar-10-batches-bin/data_batch_1.bin"`.
    public var member: String?
    /// The record (example) index inside the file or member.
    public var record: Int?
    /// Byte offset of the problem; see ``inflated``.
    public var offset: Int?
    /// True when ``offset`` counts bytes of inflated (gunzipped) data.
    public var inflated: Bool
    /// What is wrong, with the expected and actual values.
    public var problem: String

    /// Creates an error; see the properties.
    public init(file: String, member: String? = nil, record: Int? = nil, offset: Int? = nil,
                inflated: Bool = false, problem: String) {
        self.file = file
        self.member = member
        self.record = record
        self.offset = offset
        self.inflated = inflated
        self.problem = problem
    }

    /// `file: member 'm': record r: problem (at byte n)`, leaving out what is unknown.
    public var description: String {
        var parts: [String] = [file]
        if let member { parts.append("member '\(member)'") }
        if let record { parts.append("record \(record)") }
        parts.append(problem)
        let space = member != nil ? " of the member" : inflated ? " of the inflated data" : ""
        let at = offset.map { " (at byte \($0)\(space))" } ?? ""
        return parts.joined(separator: ": ") + at
    }
}

/// A warning about a file that was skipped (``ImageFolderDataset`` with
/// `skipBadFiles`), or about something a reader noticed but could work around.
public typealias DataWarning = DataError

/// Where a reader reports from: the file, the member, whether offsets are in
/// inflated bytes. Readers pass one down so every error names all three.
struct DataContext: Sendable {
    var file: String
    var member: String?
    var inflated = false

    func error(_ problem: String, record: Int? = nil, offset: Int? = nil) -> DataError {
        DataError(file: file, member: member, record: record, offset: offset, inflated: inflated, problem: problem)
    }
}

/// Whole-file reads for the data readers, errors as ``DataError``.
enum DataFile {
    /// The bytes of the file at `path`.
    static func read(path: String) throws -> [UInt8] {
        do {
            return try TensorFileIO.read(path: path)
        } catch let error as TensorFileError {
            throw DataError(file: path, problem: error.problem)
        }
    }

    /// The bytes at `path`, inflated if they start with the gzip magic (whatever the name).
    /// - Returns: the bytes and whether they were gzipped (offsets in errors then count inflated bytes).
    /// - Parameter declaredSize: for formats whose header states the file's size
    ///   (IDX): given the first `header` inflated bytes, the size the header
    ///   promises, or nil when it cannot tell. A gzipped file is then inflated
    ///   only to that size (and a little more, so trailing bytes are still named),
    ///   and a promise above ``InputLimits/decompressedBytes`` is refused before
    ///   anything is inflated: a small bomb costs nothing.
    static func readMaybeGzipped(path: String, header: Int = 0,
                                 declaredSize: (([UInt8]) -> Int?)? = nil) throws -> (bytes: [UInt8], inflated: Bool) {
        let raw = try read(path: path)
        guard Gzip.isGzip(raw) else { return (raw, false) }
        var limit = Gzip.defaultLimit
        if let declaredSize, header > 0 {
            let prefix = try Gzip.decompressPrefix(raw, count: header, source: path)
            // No header of the format (8 GiB of zeros, say): the reader refuses the
            // first bytes by themselves, so inflating the rest would only cost memory.
            guard let promised = declaredSize(prefix) else { return (prefix, true) }
            guard promised <= InputLimits.decompressedBytes else {
                throw DataError(file: path, problem: "the header promises \(promised) bytes, above the limit of "
                                + "\(InputLimits.decompressedBytes) bytes on decompressed data: corrupt or hostile file")
            }
            limit = min(limit, promised + 4096)
        }
        return (try Gzip.decompress(raw, source: path, limit: limit), true)
    }

    /// True when `path` exists and is a directory.
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// True when `path` exists and is not a directory.
    static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// The names in a directory (not hidden ones), sorted by their UTF-8 bytes
    /// (Unicode code point order, as Python's `sorted` orders them).
    static func listing(_ path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { !$0.hasPrefix(".") }
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        } catch {
            throw DataError(file: path, problem: "cannot list the directory: \(error.localizedDescription)")
        }
    }

    /// `directory/name`, without doubling a trailing slash.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
