#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor file (.npy, .npz, safetensors) could not be read or written.
///
/// Carries what a user needs to find the problem: the file, the archive member
/// and the tensor where known, the byte offset where it helps, and the problem
/// in words. The description joins them:
/// `weights.npz: member 'conv1.weight.npy': data truncated: expected 139392 bytes, file holds 1000`.
public struct TensorFileError: Error, CustomStringConvertible, Equatable {
    /// The path (or the `source` name given for in-memory bytes).
    public var file: String
    /// The .npz member, e.g. `"conv1.weight.npy"`; nil outside archives.
    public var member: String?
    /// The tensor, where the file names it (safetensors entries, conversions).
    public var tensor: String?
    /// Byte offset of the problem: in the file, or in the member for errors
    /// inside an .npz member. Nil where no single offset is meaningful.
    public var offset: Int?
    /// What is wrong, with the expected and actual values.
    public var problem: String

    /// Creates an error; see the properties.
    public init(file: String, member: String? = nil, tensor: String? = nil, offset: Int? = nil, problem: String) {
        self.file = file
        self.member = member
        self.tensor = tensor
        self.offset = offset
        self.problem = problem
    }

    /// `file: member 'm': tensor 't': problem (at byte n)`, leaving out what is unknown.
    public var description: String {
        var parts: [String] = []
        if !file.isEmpty { parts.append(file) }
        if let member { parts.append("member '\(member)'") }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(problem)
        return parts.joined(separator: ": ") + (offset.map { " (at byte \($0))" } ?? "")
    }
}

/// Where an error is being reported from: the file and, inside an archive, the member.
/// Readers pass one down so that every error they throw names both.
struct ErrorContext {
    var file: String
    var member: String?

    func error(_ problem: String, tensor: String? = nil, offset: Int? = nil) -> TensorFileError {
        TensorFileError(file: file, member: member, tensor: tensor, offset: offset, problem: problem)
    }
}

// MARK: - Header text

/// What a header parser over a file's bytes needs: a cursor over the header's
/// bytes, errors that carry the file offset, and a nesting limit, so that hostile
/// input cannot exhaust the stack. The .npy header parser (Python literals)
/// conforms; the safetensors header is JSON, read by the shared ``JSONParser``.
protocol HeaderTextParser {
    /// The header's bytes.
    var text: [UInt8] { get }
    /// Where `text` starts in the file, for error offsets.
    var base: Int { get }
    var context: ErrorContext { get }
    var position: Int { get set }
    var depth: Int { get set }
    /// How deeply values may nest.
    static var maximumDepth: Int { get }
    /// Begins every problem, e.g. "malformed header: ".
    static var problemPrefix: String { get }
    /// The bytes skipped between tokens.
    static func isWhitespace(_ byte: UInt8) -> Bool
}

extension HeaderTextParser {
    /// An error at the current position.
    func fail(_ problem: String) -> TensorFileError {
        context.error(Self.problemPrefix + problem, offset: base + position)
    }

    /// The byte at the cursor, nil at the end.
    var current: UInt8? { position < text.count ? text[position] : nil }

    /// The current byte for an error message: `'x'`, `byte 0xff` or `end of header`.
    var currentText: String {
        guard let byte = current else { return "end of header" }
        return (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    mutating func skipWhitespace() {
        while let byte = current, Self.isWhitespace(byte) { position += 1 }
    }

    /// Runs `body` one nesting level deeper, refusing to go past ``maximumDepth``.
    mutating func nested<R>(_ body: (inout Self) throws -> R) throws -> R {
        guard depth < Self.maximumDepth else { throw fail("nested more than \(Self.maximumDepth) levels deep") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }
}

// MARK: - Little-endian bytes

extension Array where Element == UInt8 {
    /// Reads a little-endian integer at `offset`; the caller has checked the bounds.
    func readLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "read past the end of the buffer")
        return withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    /// Appends `value` as little-endian bytes.
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Overwrites the bytes at `offset` with `value`, little-endian.
    mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "write past the end of the buffer")
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }
}

/// The byte count of a tensor of `dims` with `itemSize`-byte elements, or nil
/// when a dimension is negative or the product overflows `Int`. Readers call it
/// on the shape a file claims before they trust or allocate anything.
func checkedByteCount(dims: [Int], itemSize: Int) -> Int? {
    var total = itemSize
    for extent in dims {
        guard extent >= 0 else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: extent)
        if overflow { return nil }
        total = product
    }
    return total
}

// MARK: - Files

/// POSIX `read`, named apart from ``TensorFileIO/read(path:)``.
private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(descriptor, buffer, count)
    #else
    Darwin.read(descriptor, buffer, count)
    #endif
}

/// Whole-file reads and atomic writes with POSIX calls, errors as ``TensorFileError``.
enum TensorFileIO {
    /// The C library's message for `errno`.
    private static func systemMessage(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Reads the whole file at `path`.
    static func read(path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw TensorFileError(file: path, problem: "cannot open: \(systemMessage(errno))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw TensorFileError(file: path, problem: "cannot stat: \(systemMessage(errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw TensorFileError(file: path, problem: "not a regular file")
        }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let got = systemRead(descriptor, buffer.baseAddress! + initialized, size - initialized)
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                if got == 0 { return }  // the file shrank while we read it
                initialized += got
            }
        }
        guard failure == 0 else {
            throw TensorFileError(file: path, problem: "read failed: \(systemMessage(failure))")
        }
        guard bytes.count == size else {
            throw TensorFileError(file: path, problem: "file shrank while being read (\(size) bytes expected, \(bytes.count) read)")
        }
        if bytes.isEmpty { bytes.reserveCapacity(1) }
        return bytes
    }

    /// A failed write's error: the system's reason, what it usually means, and that nothing was replaced.
    private static func writeFailure(_ path: String, _ code: Int32) -> TensorFileError {
        let hint = code == EFBIG ? " (the file-size limit, ulimit -f)" : code == ENOSPC || code == EDQUOT ? " (the disk is full)" : ""
        return TensorFileError(file: path, problem: "write failed: \(systemMessage(code))\(hint); the previous file, if any, is unchanged")
    }

    /// Writes `bytes` to `path` atomically: into a temporary file in the same
    /// directory (``OutputFiles``' naming), flushed to disk, then renamed over
    /// `path`. On any failure, a file-size limit included, the temporary file is
    /// removed and whatever was at `path` is left untouched. Stale temporary
    /// files of `path` from killed processes are removed first.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let (directory, base) = OutputFiles.split(path)
        guard !base.isEmpty else {
            throw TensorFileError(file: path, problem: "cannot write: the path names a directory")
        }
        OutputFiles.ignoreFileSizeSignal()
        OutputFiles.removeStaleTemporaries(directory: directory, base: base)
        var template = Array(OutputFiles.temporaryTemplate(directory: directory, base: base).utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw TensorFileError(file: path, problem: "cannot create a temporary file in \(directory): \(systemMessage(errno))")
        }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(descriptor) }
            if !renamed { unlink(temporary) }
        }
        var written = 0
        try bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let result = write(descriptor, raw.baseAddress! + written, raw.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw writeFailure(path, errno)
                }
                written += result
            }
        }
        // mkstemp creates the file rw-------; give it the usual rw-r--r--.
        guard fchmod(descriptor, 0o644) == 0, fsync(descriptor) == 0 else {
            throw writeFailure(path, errno)
        }
        closed = true
        guard close(descriptor) == 0 else {
            throw writeFailure(path, errno)
        }
        guard rename(temporary, path) == 0 else {
            throw TensorFileError(file: path, problem: "cannot replace the file: \(systemMessage(errno))")
        }
        renamed = true
        // Make the rename itself durable; a failure here loses nothing already written.
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
