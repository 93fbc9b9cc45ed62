#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An output could not be written, or would replace something that exists.
///
/// `what` is how the user named the output (`--log`, `--checkpoint`, `the trace`),
/// so that the message says which option to change:
/// `--log run.jsonl: exists; pass --force to replace it`.
public struct OutputFileError: Error, CustomStringConvertible, Equatable {
    /// The option or role of the output, e.g. `"--output"`.
    public var what: String
    /// The path as given.
    public var path: String
    /// What is wrong and what to do.
    public var problem: String

    /// Creates an error; see the properties.
    public init(what: String, path: String, problem: String) {
        self.what = what
        self.path = path
        self.problem = problem
    }

    /// `what path: problem`.
    public var description: String { "\(what) \(path): \(problem)" }
}

/// The one policy every command and writer of the library follows for outputs
/// (Docs/reliability.md):
/// - nothing that exists is replaced unless the caller says so (`--force`);
/// - the directory an output goes into must exist: only the directory an
///   option names itself (`--checkpoint DIR`, a trace directory) is created,
///   never its missing parents;
/// - every file is written atomically: into `.NAME.partial-PID-XXXXXX` beside it,
///   flushed, then renamed over `NAME`. A write that fails for any reason (disk
///   full, a file-size limit, permissions) is an error that names the file and
///   leaves the previous file as it was; temporary files left by a killed
///   process (its PID no longer runs) are removed by the next write to the same name.
public enum OutputFiles {
    /// Checks, before any work is done, that `path` may be written as a file:
    /// its directory exists and is writable, it is not a directory, and it does
    /// not exist unless `replacing`.
    /// - Parameter what: the option or role, for the message (`"--log"`).
    /// - Throws: ``OutputFileError`` naming `what` and `path`.
    public static func checkFile(_ path: String, what: String, replacing: Bool) throws {
        func fail(_ problem: String) -> OutputFileError { OutputFileError(what: what, path: path, problem: problem) }
        var info = stat()
        if lstat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFDIR { throw fail("is a directory; name a file") }
            if !replacing { throw fail("exists; pass --force to replace it") }
        }
        try checkParent(of: path, what: what)
    }

    /// Checks that the directory `path` may be used for outputs: it is a
    /// directory or can be created (its parent exists and is writable).
    /// - Throws: ``OutputFileError`` naming `what` and `path`.
    public static func checkDirectory(_ path: String, what: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw OutputFileError(what: what, path: path, problem: "exists and is not a directory") }
            guard access(path, W_OK) == 0 else {
                throw OutputFileError(what: what, path: path, problem: "the directory is not writable (\(systemMessage(errno)))")
            }
            return
        }
        try checkParent(of: path, what: what)
    }

    /// Creates the directory `path` if it does not exist; its parent must exist.
    /// - Throws: ``OutputFileError`` with the system's reason.
    public static func makeDirectory(_ path: String, what: String) throws {
        try checkDirectory(path, what: what)
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw OutputFileError(what: what, path: path, problem: "cannot create the directory: \(systemMessage(errno))")
        }
    }

    /// `path` without trailing slashes (a lone `/` stays).
    static func trimmingTrailingSlashes(_ path: String) -> String {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed
    }

    /// `path`'s directory (`.` for a bare name, `/` at the root) and its last
    /// component, as given (empty after a trailing slash).
    static func split(_ path: String) -> (directory: String, base: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let head = String(path[..<slash])
        return (head.isEmpty ? "/" : head, String(path[path.index(after: slash)...]))
    }

    /// The directory that holds `path` (`.` for a bare name), trailing slashes aside.
    static func parent(of path: String) -> String {
        split(trimmingTrailingSlashes(path)).directory
    }

    private static func checkParent(of path: String, what: String) throws {
        let directory = parent(of: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw OutputFileError(what: what, path: path, problem: "the directory \(directory) does not exist; create it first")
        }
        guard isDirectory.boolValue else {
            throw OutputFileError(what: what, path: path, problem: "\(directory) is not a directory")
        }
        guard access(directory, W_OK | X_OK) == 0 else {
            throw OutputFileError(what: what, path: path, problem: "cannot write in \(directory): \(systemMessage(errno))")
        }
    }

    /// Writes `bytes` to the file `path` atomically (see the type's notes):
    /// readers see the old file or the new one, and a failed write leaves the old one.
    /// - Throws: ``TensorFileError`` naming the file and the system's reason.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try TensorFileIO.writeAtomically(bytes, to: path)
    }

    /// Builds a directory's contents under a temporary name beside `path`
    /// (`fill` writes into the directory it is given), then renames it to
    /// `path`, replacing what was there only once the new one is complete. The
    /// parent of `path` must exist. On any failure the temporary directory is
    /// removed and `path` is as it was.
    /// - Throws: what `fill` throws; ``TensorFileError`` when the directory cannot be made or moved.
    public static func replaceDirectory(_ path: String, fill: (String) throws -> Void) throws {
        let trimmed = trimmingTrailingSlashes(path)
        let (directory, base) = split(trimmed)
        ignoreFileSizeSignal()
        removeStaleTemporaries(directory: directory, base: base)
        var template = Array(temporaryTemplate(directory: directory, base: base).utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw TensorFileError(file: path, problem: "cannot create a directory in \(directory): \(systemMessage(errno))")
        }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: temporary) } }
        guard chmod(temporary, 0o755) == 0 else {
            throw TensorFileError(file: path, problem: "cannot set the directory's permissions: \(systemMessage(errno))")
        }
        try fill(temporary)
        var info = stat()
        if lstat(trimmed, &info) == 0 {
            // Move the old one aside first: rename cannot replace a non-empty directory.
            var aside = Array((directory + "/." + base + ".previous-\(getpid())-XXXXXX").utf8CString)
            let descriptor = aside.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            guard descriptor >= 0 else {
                throw TensorFileError(file: path, problem: "cannot move the old one aside: \(systemMessage(errno))")
            }
            close(descriptor)
            let asidePath = aside.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            unlink(asidePath)
            guard rename(trimmed, asidePath) == 0 else {
                throw TensorFileError(file: path, problem: "cannot move the old one aside: \(systemMessage(errno))")
            }
            guard rename(temporary, trimmed) == 0 else {
                let code = errno
                _ = rename(asidePath, trimmed)
                throw TensorFileError(file: path, problem: "cannot move the new one into place: \(systemMessage(code))")
            }
            done = true
            try? FileManager.default.removeItem(atPath: asidePath)
        } else {
            guard rename(temporary, trimmed) == 0 else {
                throw TensorFileError(file: path, problem: "cannot move the new one into place: \(systemMessage(errno))")
            }
            done = true
        }
    }

    // MARK: Temporary files

    /// The prefix of temporary files for the file named `base`: `.base.partial-`.
    static func temporaryPrefix(for base: String) -> String { "." + base + ".partial-" }

    /// A fresh temporary name's `mkstemp` template for `base` in `directory`, carrying this process's PID.
    static func temporaryTemplate(directory: String, base: String) -> String {
        directory + "/" + temporaryPrefix(for: base) + "\(getpid())-XXXXXX"
    }

    /// Removes `directory`'s temporary files for `base` whose writing process
    /// no longer runs (a kill during a write leaves them). Files of running
    /// processes, this one included, are left alone. Returns the names removed.
    @discardableResult
    static func removeStaleTemporaries(directory: String, base: String) -> [String] {
        let prefix = temporaryPrefix(for: base)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { continue }
            guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let full = directory + "/" + name
            if unlink(full) == 0 || (try? FileManager.default.removeItem(atPath: full)) != nil { removed.append(name) }
        }
        return removed
    }

    // MARK: Signals

    /// Makes a file-size limit (`ulimit -f`) a write error (`EFBIG`) instead of
    /// a SIGXFSZ that kills the process, unless the program handles the signal
    /// itself. Called before every atomic write; idempotent.
    static func ignoreFileSizeSignal() {
        _ = fileSizeSignalIgnored
    }

    private static let fileSizeSignalIgnored: Bool = {
        var current = sigaction()
        guard sigaction(SIGXFSZ, nil, &current) == 0 else { return false }
        #if canImport(Glibc)
        let isDefault = current.__sigaction_handler.sa_handler == nil
        #else
        let isDefault = current.__sigaction_u.__sa_handler == nil
        #endif
        if isDefault { signal(SIGXFSZ, SIG_IGN) }
        return true
    }()

    static func systemMessage(_ code: Int32) -> String { String(cString: strerror(code)) }
}
