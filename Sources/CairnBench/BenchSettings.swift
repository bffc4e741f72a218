/// Everything `cairn bench` was asked to do, parsed and checked.
public struct BenchSettings: Sendable, Equatable {
    public var targets: [Endpoint] = [Endpoint(host: "127.0.0.1", port: 7379)]
    public var workload = WorkloadSpec.named("set")!
    public var clients = 50
    public var pipeline = 1
    public var duration: UInt64 = 10_000_000_000
    /// Open-loop base rate in operations per second; nil runs closed loop.
    public var rate: Double?
    public var profile = RateProfile.constant
    public var records = 100_000
    public var valueSize = ValueSize(100, 100)
    public var jsonPath: String?
    public var htmlPath: String?
    public var compare: Endpoint?
    public var faultCommand: String?
    public var faultAt: UInt64?
    public var isQuiet = false
    public var isCluster = false
    public var resp = 2
    public var seed: UInt64?
    /// The deadline of every network wait: connecting, a reply, draining at the end.
    public var timeout: UInt64 = 5_000_000_000
    public var loads = true
    /// Attempts after the first for an operation that failed retryably (`--retries`), within a retry
    /// budget of 10% of operations; 0 never retries.
    public var retries = 2
    /// One circuit breaker per node: an operation for a node that keeps failing fails fast (`--no-breakers`).
    public var usesBreakers = true

    public init() {}

    public static let retriesMax = 10

    public static let clientsMax = 10_000
    public static let pipelineMax = 10_000
    public static let valueBytesMax = 64 * 1024 * 1024

    /// Whether a load phase writes the records before the run.
    public var runsLoadPhase: Bool { loads && workload.needsLoad }

    /// The result of parsing the flags.
    public enum Parsed: Sendable, Equatable {
        case help
        case settings(BenchSettings)
    }

    /// Parses `cairn bench` flags (`--flag value` or `--flag=value`).
    public static func parse(_ arguments: [String]) -> Result<Parsed, BenchInputError> {
        var settings = BenchSettings()
        var index = 0
        let valueless = ["--quiet", "-q", "--cluster", "--no-load", "--no-breakers"]
        let valued = [
            "--target", "--workload", "-w", "--clients", "-c", "--pipeline", "-P", "--duration", "-d", "--rate",
            "--profile", "--keys", "--value-size", "--json", "--html", "--compare", "--fault", "--fault-at", "--resp",
            "--seed", "--timeout", "--retries",
        ]
        while index < arguments.count {
            var flag = arguments[index]
            var value: String?
            if flag.hasPrefix("--"), let equals = flag.firstIndex(of: "=") {
                value = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            if flag == "--help" || flag == "-h" { return .success(.help) }
            if valueless.contains(flag) {
                guard value == nil else { return .failure(.invalid(flag: flag, value: value!, expected: "no value")) }
                switch flag {
                case "--cluster": settings.isCluster = true
                case "--no-load": settings.loads = false
                case "--no-breakers": settings.usesBreakers = false
                default: settings.isQuiet = true
                }
                index += 1
                continue
            }
            guard valued.contains(flag) else { return .failure(.unknownFlag(flag)) }
            if value == nil {
                guard index + 1 < arguments.count else { return .failure(.missingValue(flag: flag)) }
                index += 1
                value = arguments[index]
            }
            if let error = settings.apply(flag, value ?? "") { return .failure(error) }
            index += 1
        }
        if let error = settings.checkCombinations() { return .failure(error) }
        return .success(.settings(settings))
    }

    private mutating func apply(_ flag: String, _ text: String) -> BenchInputError? {
        func integer(_ range: ClosedRange<Int>) -> Int? {
            guard let number = Int(text), range.contains(number) else { return nil }
            return number
        }
        switch flag {
        case "--target":
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let parsed = parts.compactMap(Endpoint.parse)
            guard !parts.isEmpty, parsed.count == parts.count else {
                return .invalid(flag: "--target", value: text, expected: "HOST:PORT[,HOST:PORT...] with ports 1-65535")
            }
            targets = parsed
        case "--workload", "-w":
            guard let spec = WorkloadSpec.named(text) else {
                let names = WorkloadSpec.all.map(\.name).joined(separator: ", ")
                return .invalid(flag: "--workload", value: text, expected: "one of \(names)")
            }
            workload = spec
        case "--clients", "-c":
            guard let number = integer(1...Self.clientsMax) else {
                return .invalid(
                    flag: "--clients", value: text, expected: "a number of connections from 1 to \(Self.clientsMax)")
            }
            clients = number
        case "--pipeline", "-P":
            guard let number = integer(1...Self.pipelineMax) else {
                return .invalid(
                    flag: "--pipeline", value: text,
                    expected: "requests in flight per connection, 1 to \(Self.pipelineMax)")
            }
            pipeline = number
        case "--duration", "-d":
            guard let nanoseconds = BenchDuration.parse(text), nanoseconds >= 1_000_000,
                nanoseconds <= 86_400_000_000_000
            else {
                return .invalid(
                    flag: "--duration", value: text, expected: "a duration from 1ms to 24h such as 30s, 500ms or 2m")
            }
            duration = nanoseconds
        case "--rate":
            guard let number = Double(text), number > 0, number <= 100_000_000, number.isFinite else {
                return .invalid(
                    flag: "--rate", value: text,
                    expected: "operations per second, a number above 0 and at most 100000000")
            }
            rate = number
        case "--profile":
            switch RateProfile.parse(text) {
            case .success(let parsed): profile = parsed
            case .failure(let error): return error
            }
        case "--keys":
            guard let number = integer(1...CommandEncoder.recordsMax) else {
                return .invalid(
                    flag: "--keys", value: text, expected: "a record count from 1 to \(CommandEncoder.recordsMax)")
            }
            records = number
        case "--value-size":
            guard let size = Self.parseValueSize(text) else {
                return .invalid(
                    flag: "--value-size", value: text,
                    expected: "bytes N or a range A..B, at most \(Self.valueBytesMax)")
            }
            valueSize = size
        case "--json", "--html":
            guard !text.isEmpty else { return .invalid(flag: flag, value: text, expected: "a file path") }
            if flag == "--json" { jsonPath = text } else { htmlPath = text }
        case "--compare":
            guard let endpoint = Endpoint.parse(text) else {
                return .invalid(flag: "--compare", value: text, expected: "HOST:PORT with a port from 1 to 65535")
            }
            compare = endpoint
        case "--fault":
            guard !text.isEmpty else { return .invalid(flag: "--fault", value: text, expected: "a shell command") }
            faultCommand = text
        case "--fault-at":
            guard let nanoseconds = BenchDuration.parse(text) else {
                return .invalid(flag: "--fault-at", value: text, expected: "a time into the run such as 20s")
            }
            faultAt = nanoseconds
        case "--resp":
            guard text == "2" || text == "3" else { return .invalid(flag: "--resp", value: text, expected: "2 or 3") }
            resp = text == "3" ? 3 : 2
        case "--seed":
            guard let number = UInt64(text) else {
                return .invalid(flag: "--seed", value: text, expected: "an unsigned 64-bit integer")
            }
            seed = number
        case "--timeout":
            guard let nanoseconds = BenchDuration.parse(text), nanoseconds >= 1_000_000,
                nanoseconds <= 3_600_000_000_000
            else {
                return .invalid(flag: "--timeout", value: text, expected: "a duration from 1ms to 1h such as 5s")
            }
            timeout = nanoseconds
        case "--retries":
            guard let count = Int(text), (0...Self.retriesMax).contains(count) else {
                return .invalid(flag: "--retries", value: text, expected: "a number from 0 to \(Self.retriesMax)")
            }
            retries = count
        default:
            preconditionFailure("flag \(flag) is known but not handled")
        }
        return nil
    }

    private func checkCombinations() -> BenchInputError? {
        if profile != .constant && rate == nil {
            return .conflict("--profile \(profile) needs --rate R (the base rate of an open-loop run)")
        }
        if (faultCommand == nil) != (faultAt == nil) {
            return .conflict("--fault CMD and --fault-at T go together")
        }
        if let at = faultAt, at >= duration {
            return .conflict(
                "--fault-at (\(BenchDuration.format(at))) must be inside --duration (\(BenchDuration.format(duration)))"
            )
        }
        if isCluster && workload.hasScans {
            return .conflict(
                "--workload \(workload.name) scans keys of many slots with MGET, which a cluster refuses; use it without --cluster"
            )
        }
        if isCluster && compare != nil {
            return .conflict("--compare runs against a plain endpoint; it cannot be combined with --cluster")
        }
        if case .step(let every, _) = profile, every > duration {
            return .conflict(
                "--profile step:every=\(BenchDuration.format(every)) is longer than --duration; no step would happen")
        }
        return nil
    }

    static func parseValueSize(_ text: String) -> ValueSize? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 1, let bytes = Int(text), (0...valueBytesMax).contains(bytes) {
            return ValueSize(bytes, bytes)
        }
        guard parts.count == 3, parts[1].isEmpty, let low = Int(parts[0]), let high = Int(parts[2]), low >= 0,
            low <= high, high <= valueBytesMax
        else { return nil }
        return ValueSize(low, high)
    }

    /// The settings as one line, for reports.
    public var description: String {
        var parts = [
            "workload=\(workload.name)", "clients=\(clients)", "pipeline=\(pipeline)",
            "duration=\(BenchDuration.format(duration))",
        ]
        parts.append(rate.map { "rate=\(RateProfile.formatRate($0)) profile=\(profile)" } ?? "closed-loop")
        parts += ["keys=\(records)", "value-size=\(valueSize)", "resp=\(resp)"]
        if isCluster { parts.append("cluster") }
        return parts.joined(separator: " ")
    }
}
