import CLinux
import CairnStorage
import Glibc

/// The node's data directory: created if missing, and locked so a second process on it fails at once.
///
/// Layout: `cairn.lock` (the lock, holding the owner's PID) and `db/` (RocksDB).
public final class DataDirectory {
    public let path: String
    private let lockDescriptor: Int32

    public var databasePath: String { path + "/db" }

    /// Creates the directory if needed and takes its lock.
    /// - Throws: `StorageError.dataDirectory` with a message for the operator.
    public init(path: String) throws(StorageError) {
        self.path = path
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            throw .dataDirectory(path: path, reason: "cannot create it: \(System.errorText())")
        }
        let lockPath = path + "/cairn.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .dataDirectory(path: path, reason: "cannot open \(lockPath): \(System.errorText())")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            let owner = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingNewlines() : "unknown"
            if code == EWOULDBLOCK {
                throw .dataDirectory(
                    path: path,
                    reason: "in use by another cairn process (pid \(owner)); stop it or choose another --data-dir")
            }
            throw .dataDirectory(path: path, reason: "cannot lock \(lockPath): \(System.errorText(code))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        lockDescriptor = fd
    }

    deinit {
        _ = flock(lockDescriptor, LOCK_UN)
        close(lockDescriptor)
    }
}

extension String {
    func trimmingNewlines() -> String {
        String(self.filter { $0 != "\n" && $0 != "\r" })
    }
}
