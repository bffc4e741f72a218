import CairnCore

/// What one operation of a workload does. Each maps onto Redis string commands.
public enum OperationKind: Int, Sendable, Equatable, CaseIterable {
    /// `GET key`.
    case read
    /// `SET key value` on a record that exists.
    case update
    /// `SET key value` on a new record (the record count grows).
    case insert
    /// `MGET` of up to 100 consecutive records: a short range read (YCSB E).
    case scan
    /// `GET key`, then, once its reply arrives, `SET key value` (YCSB F); timed as one operation.
    case readModifyWrite

    public var name: String {
        switch self {
        case .read: "read"
        case .update: "update"
        case .insert: "insert"
        case .scan: "scan"
        case .readModifyWrite: "read-modify-write"
        }
    }
}

/// The Redis commands a workload sends, counted per command so a report can be checked against a
/// server's `INFO commandstats`.
public enum SentCommand: Int, Sendable, CaseIterable {
    case get
    case set
    case mget

    public var name: String {
        switch self {
        case .get: "get"
        case .set: "set"
        case .mget: "mget"
        }
    }
}

/// One operation to run: its kind, the record it touches and, for a scan, how many records.
public struct Operation: Sendable, Equatable {
    public var kind: OperationKind
    public var record: Int
    public var scanLength: Int
    public var valueBytes: Int

    public init(kind: OperationKind, record: Int, scanLength: Int = 0, valueBytes: Int = 0) {
        self.kind = kind
        self.record = record
        self.scanLength = scanLength
        self.valueBytes = valueBytes
    }
}

/// A named workload: its operation mix, how it picks records, and whether it needs a load phase.
///
/// The YCSB core workloads follow YCSB's `workloads/workload[a-f]` files: A update heavy (50/50
/// read/update, zipfian), B read mostly (95/5, zipfian), C read only (zipfian), D read latest (95/5
/// read/insert, latest), E short ranges (95/5 scan/insert, zipfian, scans of 1 to 100 records), F
/// read-modify-write (50/50 read/read-modify-write, zipfian). `set`, `get` and `mixed` are
/// redis-benchmark-like: uniform keys, all SET, all GET, or 80% GET and 20% SET.
public struct WorkloadSpec: Sendable, Equatable {
    public let name: String
    /// Proportions by `OperationKind.rawValue`, summing to 1.
    public let mix: [Double]
    public let distribution: KeyDistribution
    /// Whether the records are written before the run (everything but `set`).
    public let needsLoad: Bool
    public static let scanLengthMax = 100

    init(
        _ name: String, read: Double = 0, update: Double = 0, insert: Double = 0, scan: Double = 0, rmw: Double = 0,
        distribution: KeyDistribution, needsLoad: Bool = true
    ) {
        self.name = name
        mix = [read, update, insert, scan, rmw]
        precondition(abs(mix.reduce(0, +) - 1) < 1e-9, "workload \(name) mix does not sum to 1: \(mix)")
        self.distribution = distribution
        self.needsLoad = needsLoad
    }

    public static let all: [WorkloadSpec] = [
        WorkloadSpec("set", update: 1, distribution: .uniform, needsLoad: false),
        WorkloadSpec("get", read: 1, distribution: .uniform),
        WorkloadSpec("mixed", read: 0.8, update: 0.2, distribution: .uniform),
        WorkloadSpec("ycsb-a", read: 0.5, update: 0.5, distribution: .zipfian),
        WorkloadSpec("ycsb-b", read: 0.95, update: 0.05, distribution: .zipfian),
        WorkloadSpec("ycsb-c", read: 1, distribution: .zipfian),
        WorkloadSpec("ycsb-d", read: 0.95, insert: 0.05, distribution: .latest),
        WorkloadSpec("ycsb-e", insert: 0.05, scan: 0.95, distribution: .zipfian),
        WorkloadSpec("ycsb-f", read: 0.5, rmw: 0.5, distribution: .zipfian),
    ]

    public static func named(_ name: String) -> WorkloadSpec? {
        all.first { $0.name == name.lowercased() }
    }

    /// Whether any operation of this workload is a multi-key scan (refused in cluster mode).
    public var hasScans: Bool { mix[OperationKind.scan.rawValue] > 0 }
}

/// Value sizes: a fixed size or uniform in a range (YCSB's `fieldlengthdistribution`).
public struct ValueSize: Sendable, Equatable, CustomStringConvertible {
    public let minimum: Int
    public let maximum: Int

    public init(_ minimum: Int, _ maximum: Int) {
        precondition(minimum >= 0 && minimum <= maximum, "value size range \(minimum)..\(maximum)")
        self.minimum = minimum
        self.maximum = maximum
    }

    public var description: String { minimum == maximum ? "\(minimum)" : "\(minimum)..\(maximum)" }

    mutating func next(_ prng: inout SplitMix64) -> Int {
        minimum == maximum ? minimum : minimum + prng.below(maximum - minimum + 1)
    }
}

/// Draws the operations of a workload's run phase from a seeded generator. Deterministic: the same
/// seed and settings give the same operations.
public struct WorkloadGenerator: Sendable {
    public let spec: WorkloadSpec
    /// Records that exist: the loaded ones plus those inserted so far.
    public private(set) var records: Int
    private var chooser: KeyChooser
    private var prng: SplitMix64
    private var valueSize: ValueSize
    /// Cumulative proportions, for one draw per operation.
    private let thresholds: [Double]

    public init(spec: WorkloadSpec, records: Int, valueSize: ValueSize, seed: UInt64) {
        precondition(records >= 1, "a workload needs at least one record, got \(records)")
        self.spec = spec
        self.records = records
        self.valueSize = valueSize
        chooser = KeyChooser(spec.distribution, records: records)
        prng = SplitMix64(seed: seed)
        var sum = 0.0
        thresholds = spec.mix.map {
            sum += $0
            return sum
        }
    }

    public mutating func next() -> Operation {
        let draw = Double(prng.next() >> 11) * 0x1.0p-53
        var kindIndex = thresholds.count - 1
        for (index, threshold) in thresholds.enumerated() where draw < threshold && spec.mix[index] > 0 {
            kindIndex = index
            break
        }
        let kind = OperationKind(rawValue: kindIndex)!
        switch kind {
        case .insert:
            let record = records
            records += 1
            return Operation(kind: .insert, record: record, valueBytes: valueSize.next(&prng))
        case .scan:
            let start = chooser.next(records: records, &prng)
            let length = 1 + prng.below(WorkloadSpec.scanLengthMax)
            return Operation(kind: .scan, record: start, scanLength: Swift.min(length, records - start))
        case .read:
            return Operation(kind: .read, record: chooser.next(records: records, &prng))
        case .update, .readModifyWrite:
            let record = chooser.next(records: records, &prng)
            return Operation(kind: kind, record: record, valueBytes: valueSize.next(&prng))
        }
    }

    /// A value size for the load phase.
    public mutating func nextValueBytes() -> Int { valueSize.next(&prng) }
}
