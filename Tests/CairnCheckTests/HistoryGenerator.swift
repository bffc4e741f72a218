import CairnCheck
import CairnCore

/// Generates histories from a sequential register model, so every history it makes is linearizable
/// by construction: each operation takes effect at one tick inside its window, in one global order.
///
/// Clients send requests at random ticks. Each request takes effect at a random later tick (the
/// concurrency window) and is answered at a random tick after that. Some requests fail (no effect,
/// a definite error reply) and some time out (the client gives up; the request may still take effect,
/// even after the client stopped waiting, or never).
struct HistoryGenerator {
    var clients = 5
    var keys = 3
    var operations = 300
    /// The most ticks between invocation and effect, and again between effect and reply.
    var windowTicksMax = 6
    var failedPercent = 5
    var unknownPercent = 5
    /// Of the requests that time out, how many still take effect.
    var unknownAppliedPercent = 50

    private enum Fate {
        case ok
        case failed
        case unknownApplied
        case unknownNotApplied
    }

    private struct Record {
        var operation: RegisterOperation
        var fate: Fate
        var effectTick: UInt64
    }

    /// A linearizable history of `operations` operations.
    func generate(using prng: inout SplitMix64) -> [RegisterOperation] {
        var records: [Record] = []
        var scheduled: [Int] = []  // Records whose effect is still to come, in the order they were sent.
        var busyUntil = Array(repeating: UInt64(0), count: clients)
        var model: [RegisterKey: RegisterValue] = [:]
        var valuesWritten = 0
        var tick: UInt64 = 0
        while records.count < operations || !scheduled.isEmpty {
            for client in 0..<clients where busyUntil[client] < tick && records.count < operations {
                guard prng.below(2) == 0 else { continue }
                let record = newRecord(client: client, tick: tick, model: model, values: &valuesWritten, using: &prng)
                busyUntil[client] = record.operation.response?.ticks ?? (tick + UInt64(prng.below(windowTicksMax + 1)))
                if record.fate == .ok || record.fate == .unknownApplied { scheduled.append(records.count) }
                records.append(record)
            }
            scheduled.removeAll { index in
                guard records[index].effectTick == tick else { return false }
                records[index].operation.kind = Self.apply(records[index].operation, to: &model)
                return true
            }
            tick += 1
        }
        return records.map(\.operation)
    }

    private func newRecord(
        client: Int, tick: UInt64, model: [RegisterKey: RegisterValue], values: inout Int, using prng: inout SplitMix64
    ) -> Record {
        let key = RegisterKey(stringLiteral: "key\(prng.below(keys))")
        let roll = prng.below(100)
        let fate: Fate =
            roll < failedPercent
            ? .failed
            : roll < failedPercent + unknownPercent
                ? (prng.below(100) < unknownAppliedPercent ? .unknownApplied : .unknownNotApplied) : .ok
        let kind: RegisterOperation.Kind
        switch prng.below(20) {
        case 0..<8: kind = .read(observed: nil)
        case 8..<13:
            values += 1
            kind = .write(RegisterValue(stringLiteral: "v\(values)"))
        case 13..<18:
            values += 1
            let expected = prng.below(3) < 2 ? model[key] : RegisterValue(stringLiteral: "v\(prng.below(values))")
            kind = .compareAndSet(expected: expected, new: RegisterValue(stringLiteral: "v\(values)"), succeeded: false)
        default: kind = .delete
        }
        let window = UInt64(windowTicksMax + 1)
        // An unknown request may take effect well after the client stopped waiting for it.
        let effectTick = tick + UInt64(prng.below(Int(fate == .unknownApplied ? window * 3 : window)))
        let outcome: RegisterOperation.Outcome
        switch fate {
        case .ok: outcome = .ok(at: Timestamp(ticks: effectTick + UInt64(prng.below(Int(window)))))
        case .failed: outcome = .failed(at: Timestamp(ticks: tick + UInt64(prng.below(Int(window)))))
        case .unknownApplied, .unknownNotApplied: outcome = .unknown
        }
        let operation = RegisterOperation(
            client: ClientID(UInt64(client)), key: key, kind: kind, invocation: Timestamp(ticks: tick), outcome: outcome
        )
        return Record(operation: operation, fate: fate, effectTick: effectTick)
    }

    /// Applies `operation` to the sequential model and returns its kind with the reply filled in.
    private static func apply(_ operation: RegisterOperation, to model: inout [RegisterKey: RegisterValue])
        -> RegisterOperation.Kind
    {
        switch operation.kind {
        case .read:
            return .read(observed: model[operation.key])
        case .write(let value):
            model[operation.key] = value
            return operation.kind
        case .compareAndSet(let expected, let new, _):
            let succeeded = model[operation.key] == expected
            if succeeded { model[operation.key] = new }
            return .compareAndSet(expected: expected, new: new, succeeded: succeeded)
        case .delete:
            model[operation.key] = nil
            return operation.kind
        }
    }
}
