/// How the target rate of an open-loop run changes over time. The base rate is `--rate`.
///
/// Text forms (`--profile`), durations like `5s`, `500ms`, `2m`:
/// - `constant`: the base rate throughout.
/// - `ramp` or `ramp:from=R`: linear from R (default a tenth of the base rate) to the base rate.
/// - `step:every=D` or `step:every=D,by=R`: the base rate, raised by R (default the base rate)
///   every D.
/// - `spike` or `spike:x=M,for=D,every=P,at=S`: M times the base rate (default 10) for D (default
///   5s) every P (default 30s), the first spike starting at S (default P/2).
public enum RateProfile: Sendable, Equatable, CustomStringConvertible {
    case constant
    case ramp(fromRate: Double?)
    case step(everyNanoseconds: UInt64, byRate: Double?)
    case spike(multiplier: Double, lengthNanoseconds: UInt64, periodNanoseconds: UInt64, firstNanoseconds: UInt64)

    public static let spikeDefault = RateProfile.spike(
        multiplier: 10, lengthNanoseconds: 5_000_000_000, periodNanoseconds: 30_000_000_000,
        firstNanoseconds: 15_000_000_000)

    /// The target rate (operations per second) at `time` nanoseconds into a run of `duration`.
    public func rate(base: Double, at time: UInt64, duration: UInt64) -> Double {
        switch self {
        case .constant:
            return base
        case .ramp(let fromRate):
            let start = fromRate ?? base / 10
            let fraction = duration == 0 ? 1 : min(1, Double(time) / Double(duration))
            return start + (base - start) * fraction
        case .step(let every, let byRate):
            return base + Double(time / every) * (byRate ?? base)
        case .spike(let multiplier, _, _, _):
            return spikeWindows(duration: duration).contains { $0.contains(time) } ? base * multiplier : base
        }
    }

    /// The spike windows inside a run of `duration` nanoseconds, for the report to mark.
    public func spikeWindows(duration: UInt64) -> [Range<UInt64>] {
        guard case .spike(_, let length, let period, let first) = self else { return [] }
        var windows: [Range<UInt64>] = []
        var start = first
        while start < duration {
            windows.append(start..<min(start + length, duration))
            start += period
        }
        return windows
    }

    public var description: String {
        switch self {
        case .constant: "constant"
        case .ramp(let from): from.map { "ramp:from=\(Self.formatRate($0))" } ?? "ramp"
        case .step(let every, let by):
            "step:every=\(BenchDuration.format(every))" + (by.map { ",by=\(Self.formatRate($0))" } ?? "")
        case .spike(let multiplier, let length, let period, let first):
            "spike:x=\(Self.formatRate(multiplier)),for=\(BenchDuration.format(length)),every=\(BenchDuration.format(period))"
                + ",at=\(BenchDuration.format(first))"
        }
    }

    static func formatRate(_ rate: Double) -> String {
        rate == rate.rounded() && abs(rate) < 1e15 ? String(Int64(rate)) : String(rate)
    }

    /// Parses the text form; nil with a reason when it is not valid.
    public static func parse(_ text: String) -> Result<RateProfile, BenchInputError> {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let name = parts.first ?? ""
        var options: [String: String] = [:]
        if parts.count == 2 {
            for item in parts[1].split(separator: ",") {
                let pair = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard pair.count == 2 else {
                    return .failure(.invalid(flag: "--profile", value: text, expected: "options as key=value"))
                }
                options[pair[0]] = pair[1]
            }
        }
        func unknownOptions(_ allowed: [String]) -> BenchInputError? {
            let unknown = options.keys.filter { !allowed.contains($0) }.sorted()
            guard let first = unknown.first else { return nil }
            let list = allowed.isEmpty ? "no options" : "only " + allowed.joined(separator: ", ")
            return .invalid(flag: "--profile", value: text, expected: "\(name) takes \(list), not '\(first)'")
        }
        func positiveRate(_ key: String) -> Result<Double?, BenchInputError> {
            guard let value = options[key] else { return .success(nil) }
            guard let rate = Double(value), rate > 0, rate.isFinite else {
                return .failure(.invalid(flag: "--profile", value: text, expected: "\(key)= a positive number"))
            }
            return .success(rate)
        }
        func duration(_ key: String, _ fallback: UInt64) -> Result<UInt64, BenchInputError> {
            guard let value = options[key] else { return .success(fallback) }
            guard let nanoseconds = BenchDuration.parse(value), nanoseconds > 0 else {
                return .failure(
                    .invalid(flag: "--profile", value: text, expected: "\(key)= a duration such as 5s or 500ms"))
            }
            return .success(nanoseconds)
        }
        switch name {
        case "constant":
            if let error = unknownOptions([]) { return .failure(error) }
            return .success(.constant)
        case "ramp":
            if let error = unknownOptions(["from"]) { return .failure(error) }
            return positiveRate("from").map { .ramp(fromRate: $0) }
        case "step":
            if let error = unknownOptions(["every", "by"]) { return .failure(error) }
            guard options["every"] != nil else {
                return .failure(
                    .invalid(flag: "--profile", value: text, expected: "step:every=D[,by=R], e.g. step:every=10s"))
            }
            return duration("every", 0).flatMap { every in
                positiveRate("by").map { .step(everyNanoseconds: every, byRate: $0) }
            }
        case "spike":
            if let error = unknownOptions(["x", "for", "every", "at"]) { return .failure(error) }
            guard case .spike(let defaultX, let defaultFor, let defaultEvery, _) = spikeDefault else {
                preconditionFailure("spikeDefault is a spike")
            }
            return positiveRate("x").flatMap { x in
                duration("for", defaultFor).flatMap { length in
                    duration("every", defaultEvery).flatMap { period in
                        guard length <= period else {
                            return .failure(
                                .invalid(flag: "--profile", value: text, expected: "for= no longer than every="))
                        }
                        return duration("at", period / 2).map { first in
                            .spike(
                                multiplier: x ?? defaultX, lengthNanoseconds: length, periodNanoseconds: period,
                                firstNanoseconds: first)
                        }
                    }
                }
            }
        default:
            return .failure(.invalid(flag: "--profile", value: text, expected: "one of constant, ramp, step, spike"))
        }
    }
}

/// Durations in nanoseconds, written as `30s`, `500ms`, `2m`, `1h`, `250us` or a bare number of seconds.
public enum BenchDuration {
    public static func parse(_ text: String) -> UInt64? {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(text)
        var scale = 1e9
        for (suffix, unitScale) in units where text.hasSuffix(suffix) {
            let candidate = text.dropLast(suffix.count)
            // "ms" ends with "s" too: take the longest suffix whose rest is a number.
            if Double(candidate) != nil {
                number = candidate
                scale = unitScale
                break
            }
        }
        guard let value = Double(number), value >= 0, value.isFinite, value * scale < 1e18 else { return nil }
        return UInt64((value * scale).rounded())
    }

    /// A short human form: `30s`, `1.5s`, `250ms`, `2m`.
    public static func format(_ nanoseconds: UInt64) -> String {
        if nanoseconds % 60_000_000_000 == 0 && nanoseconds > 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        if nanoseconds % 1000 == 0 { return "\(nanoseconds / 1000)us" }
        return "\(nanoseconds)ns"
    }
}

/// The intended start times of an open-loop run: request n+1 is due 1/rate(t_n) after request n,
/// whatever happened to request n. Latency is measured from these times, so a stalled server is
/// charged for every request it kept waiting, including those not sent yet (no coordinated omission).
///
/// Pure: the caller passes the time in. The schedule never sends anything; it answers "which
/// requests are due by now", one at a time, in order.
public struct OpenLoopSchedule: Sendable {
    public let baseRate: Double
    public let profile: RateProfile
    public let duration: UInt64
    /// The intended start of the next request, in nanoseconds from the run's start (a Double, so
    /// rounding does not accumulate over millions of requests).
    private var nextIntended: Double = 0
    /// Requests handed out so far.
    public private(set) var taken: UInt64 = 0

    public init(baseRate: Double, profile: RateProfile, duration: UInt64) {
        precondition(baseRate > 0 && baseRate.isFinite, "open-loop rate must be positive, got \(baseRate)")
        self.baseRate = baseRate
        self.profile = profile
        self.duration = duration
    }

    /// The intended start of the next request that is not taken yet (it may lie in the future).
    public var nextIntendedNanoseconds: UInt64 { UInt64(nextIntended) }

    /// True once every request of the run has been taken.
    public var isFinished: Bool { nextIntended >= Double(duration) }

    /// The intended start time of the next request if it is due by `now`, and advances past it;
    /// nil if none is due yet or the run has ended.
    public mutating func takeDue(now: UInt64) -> UInt64? {
        guard !isFinished, UInt64(nextIntended) <= now else { return nil }
        let intended = UInt64(nextIntended)
        let rate = max(profile.rate(base: baseRate, at: intended, duration: duration), 1e-3)
        nextIntended += 1e9 / rate
        taken += 1
        return intended
    }

    /// How many requests of the run were due by `now` but not taken: requests the client could not
    /// even send, which a report must not hide.
    public func dueButNotTaken(now: UInt64) -> UInt64 {
        var copy = self
        var count: UInt64 = 0
        while copy.takeDue(now: min(now, duration)) != nil { count += 1 }
        return count
    }
}
