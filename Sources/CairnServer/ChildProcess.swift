import Glibc

/// A child process started with `posix_spawn`, never with `fork` (a forked Swift process may only
/// call async-signal-safe functions before `exec`, which Swift code cannot promise).
///
/// The child gets stdin from /dev/null and stdout and stderr appended to a log file, the default
/// action for SIGINT, SIGTERM, SIGCHLD and SIGPIPE, an empty signal mask, and its own process group,
/// so a Ctrl-C in the terminal reaches only the parent, which then stops its children in order.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// How a child stands, as `waitpid` reports it.
    public enum Status: Sendable, Equatable {
        case running
        case exited(code: Int32)
        case killed(signal: Int32)

        /// "exited with status 1" or "was killed by signal 9 (SIGKILL)".
        public var description: String {
            switch self {
            case .running: return "is running"
            case .exited(let code): return "exited with status \(code)"
            case .killed(let signal):
                let names: [Int32: String] = [
                    SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT",
                    SIGILL: "SIGILL", SIGBUS: "SIGBUS", SIGTRAP: "SIGTRAP",
                ]
                return "was killed by signal \(signal)" + (names[signal].map { " (\($0))" } ?? "")
            }
        }
    }

    /// Starts `executable` with `arguments` (the first is the child's `argv[0]`), appending its output
    /// to `logPath` (created if missing).
    /// - Throws: `StartupError` naming the executable and the system's reason.
    public static func spawn(executable: String, arguments: [String], logPath: String) throws(StartupError) -> Self {
        precondition(!arguments.isEmpty, "argv needs at least argv[0]")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGCHLD, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw StartupError(description: "cannot start \(executable): \(System.errorText(result))")
        }
        return ChildProcess(pid: pid)
    }

    /// Reaps the child if it has ended; never blocks. Call it until it reports an end, at most once after.
    public func poll() -> Status {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return .running }
        guard result == pid else {
            // ECHILD: already reaped or not ours. Report it as gone rather than running forever.
            return .exited(code: -1)
        }
        return Self.decode(status)
    }

    /// Sends `signal` to the child by PID. Returns false if it no longer exists.
    @discardableResult
    public func send(_ signal: Int32) -> Bool {
        kill(pid, signal) == 0
    }

    /// The `WIFEXITED`/`WEXITSTATUS`/`WTERMSIG` macros, which Swift does not import.
    static func decode(_ status: Int32) -> Status {
        let low = status & 0x7f
        if low == 0 { return .exited(code: (status >> 8) & 0xff) }
        return .killed(signal: low)
    }

    /// Whether some process has this PID (it may belong to another user).
    public static func isAlive(_ pid: pid_t) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }

    /// The command line of process `pid` from /proc, or nil if it is gone.
    public static func commandLine(of pid: pid_t) -> [String]? {
        let fd = open("/proc/\(pid)/cmdline", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 * 1024 {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }
}
