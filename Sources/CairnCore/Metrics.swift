/// What kind of Prometheus metric a family is, with the bucket bounds of a histogram.
public enum MetricKind: Sendable, Equatable {
    case counter
    case gauge
    /// Upper bounds of the buckets, ascending; `+Inf` is implied.
    case histogram(buckets: [Double])
}

/// The fixed description of one metric family: name, help text and kind.
public struct MetricFamily: Sendable, Hashable {
    public let name: String
    public let help: String
    public let kind: MetricKind

    public init(_ name: String, help: String, kind: MetricKind) {
        precondition(Self.isValidName(name), "invalid Prometheus metric name \(name)")
        self.name = name
        self.help = help
        self.kind = kind
    }

    public static func == (lhs: MetricFamily, rhs: MetricFamily) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ":")
        }
    }

    /// Latency buckets in seconds, from 10 µs to 10 s, roughly ×2.5 apart.
    public static let latencyBucketsSeconds: [Double] = [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25, 0.5, 1, 2.5, 5, 10,
    ]
}

/// The values of one histogram series.
public struct HistogramValue: Sendable, Equatable {
    /// Non-cumulative counts, one per bucket bound plus one for `+Inf`.
    public var counts: [UInt64]
    public var sum: Double = 0
    public var count: UInt64 = 0

    public init(bucketCount: Int) {
        counts = Array(repeating: 0, count: bucketCount + 1)
    }

    /// Counts one observation; `buckets` are the family's bounds.
    public mutating func observe(_ value: Double, buckets: [Double]) {
        precondition(
            counts.count == buckets.count + 1, "histogram has \(counts.count) counts for \(buckets.count) buckets")
        var index = buckets.count
        for (position, bound) in buckets.enumerated() where value <= bound {
            index = position
            break
        }
        counts[index] += 1
        sum += value
        count += 1
    }
}

/// A Prometheus metrics registry: counters, gauges and histograms with labels, rendered in the text
/// exposition format (version 0.0.4).
///
/// Pure and single-threaded: each core owns one and the shell owns one; `/metrics` renders them
/// together. Series are rendered sorted, so the output is deterministic.
public struct MetricsRegistry: Sendable {
    private var families: [String: MetricFamily] = [:]
    private var scalars: [String: [String: Double]] = [:]
    private var histograms: [String: [String: HistogramValue]] = [:]

    public init() {}

    /// Declares a family so it renders (with HELP and TYPE) even before its first sample.
    public mutating func register(_ family: MetricFamily) {
        families[family.name] = family
    }

    /// Adds `value` to a counter (or gauge) series.
    public mutating func add(_ family: MetricFamily, _ labels: [(String, String)] = [], _ value: Double = 1) {
        families[family.name] = family
        scalars[family.name, default: [:]][Self.labelText(labels), default: 0] += value
    }

    /// Sets a gauge series.
    public mutating func set(_ family: MetricFamily, _ labels: [(String, String)] = [], _ value: Double) {
        families[family.name] = family
        scalars[family.name, default: [:]][Self.labelText(labels)] = value
    }

    /// The current value of a counter or gauge series (for tests and INFO).
    public func value(_ family: MetricFamily, _ labels: [(String, String)] = []) -> Double {
        scalars[family.name]?[Self.labelText(labels)] ?? 0
    }

    /// Records one observation in a histogram series.
    public mutating func observe(_ family: MetricFamily, _ labels: [(String, String)] = [], _ value: Double) {
        guard case .histogram(let buckets) = family.kind else {
            preconditionFailure("observe(\(family.name)) on a family that is not a histogram")
        }
        families[family.name] = family
        histograms[family.name, default: [:]][
            Self.labelText(labels), default: HistogramValue(bucketCount: buckets.count)
        ]
        .observe(value, buckets: buckets)
    }

    /// Replaces a histogram series with values kept elsewhere (a core's own per-command histograms).
    public mutating func setHistogram(_ family: MetricFamily, _ labels: [(String, String)], _ value: HistogramValue) {
        guard case .histogram(let buckets) = family.kind, value.counts.count == buckets.count + 1 else {
            preconditionFailure("setHistogram(\(family.name)) with a family or value that does not match")
        }
        families[family.name] = family
        histograms[family.name, default: [:]][Self.labelText(labels)] = value
    }

    /// The histogram series for `labels`, if it has observations.
    public func histogram(_ family: MetricFamily, _ labels: [(String, String)] = []) -> HistogramValue? {
        histograms[family.name]?[Self.labelText(labels)]
    }

    /// The whole registry in the Prometheus text format.
    public func render() -> String {
        var text = ""
        for name in families.keys.sorted() {
            guard let family = families[name] else { continue }
            text += "# HELP \(name) \(Self.escapeHelp(family.help))\n"
            switch family.kind {
            case .counter, .gauge:
                text += "# TYPE \(name) \(family.kind == .counter ? "counter" : "gauge")\n"
                for (labels, value) in (scalars[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    text += "\(name)\(labels.isEmpty ? "" : "{\(labels)}") \(Self.format(value))\n"
                }
            case .histogram(let buckets):
                text += "# TYPE \(name) histogram\n"
                for (labels, series) in (histograms[name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    let prefix = labels.isEmpty ? "" : labels + ","
                    var cumulative: UInt64 = 0
                    for (position, bound) in buckets.enumerated() {
                        cumulative += series.counts[position]
                        text += "\(name)_bucket{\(prefix)le=\"\(Self.format(bound))\"} \(cumulative)\n"
                    }
                    text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(series.count)\n"
                    text += "\(name)_sum\(labels.isEmpty ? "" : "{\(labels)}") \(Self.format(series.sum))\n"
                    text += "\(name)_count\(labels.isEmpty ? "" : "{\(labels)}") \(series.count)\n"
                }
            }
        }
        return text
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
    }

    static func escapeLabel(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func escapeHelp(_ help: String) -> String {
        help.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }

    /// Formats a sample value: integers without a fraction, others in Swift's shortest round-trip form.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

extension String {
    /// Replaces every occurrence of `target` (stdlib only; pure modules do not import Foundation).
    public func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        return self.split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
