/// A register value interned as a small integer, so a search state is cheap to store and hash.
struct ValueID: Sendable, Hashable {
    var rawValue: Int32

    /// The key does not exist (never written, or deleted).
    static let absent = ValueID(rawValue: -1)
    /// Any value that no operation on the key ever tests (see `ValueTable`).
    static let untested = ValueID(rawValue: -2)
}

/// Interns the values one key's history mentions. IDs are handed out in order of first test, so the
/// same history always gets the same IDs.
///
/// Values that no operation *tests* (no read saw them, no compare-and-set expected them) all share
/// one ID, `untested`. This is exact, not a heuristic: every step treats two untested values alike
/// (a read of a tested value fails on both, a compare-and-set from a tested value fails on both,
/// a mismatch with a tested value passes on both, a write replaces both), so configurations that
/// differ only in which untested value the register holds have the same futures. It merges the
/// many orders of concurrent writes whose values nobody read before they were overwritten.
struct ValueTable {
    private var ids: [RegisterValue: ValueID] = [:]

    /// - Parameter tested: the values some operation reads or compares against; only these get their own ID.
    init(tested: [RegisterValue]) {
        for value in tested where ids[value] == nil {
            precondition(ids.count < Int(Int32.max), "more distinct values on one key than ValueID can hold")
            ids[value] = ValueID(rawValue: Int32(ids.count))
        }
    }

    func id(of value: RegisterValue?) -> ValueID {
        guard let value else { return .absent }
        return ids[value] ?? .untested
    }
}

/// The sequential specification of a register: what one operation does to the value, and whether
/// its reply is possible from that value. This is the "model" of Porcupine and Lowe.
///
/// A delete is a write of `absent`. A compare-and-set that reported a mismatch is a read that
/// requires the value to differ from `expected`. A compare-and-set whose outcome is unknown is
/// modelled as one that swapped: if it did not swap it changed nothing, which is the same as
/// leaving it out of the linearization, and the search may always do that.
enum RegisterStep: Sendable, Hashable {
    /// A read that saw this value; possible only if the register holds it.
    case read(observed: ValueID)
    /// A write (or, with `absent`, a delete); always possible.
    case write(ValueID)
    /// A compare-and-set that swapped; possible only if the register holds `expected`.
    case compareAndSet(expected: ValueID, new: ValueID)
    /// A compare-and-set that reported a mismatch; possible only if the register does not hold `expected`.
    case compareMismatch(expected: ValueID)

    /// Whether the step leaves the value as it found it whenever it fits (a read, a mismatch), which
    /// lets the search place it as soon as it fits without considering other orders.
    var changesNothing: Bool {
        switch self {
        case .read, .compareMismatch: true
        case .write, .compareAndSet: false
        }
    }

    /// The register's value after this step, or `nil` if the step's reply is impossible from `state`.
    func apply(to state: ValueID) -> ValueID? {
        switch self {
        case .read(let observed): observed == state ? state : nil
        case .write(let value): value
        case .compareAndSet(let expected, let new): expected == state ? new : nil
        case .compareMismatch(let expected): expected != state ? state : nil
        }
    }
}
