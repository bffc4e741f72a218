import CairnCheck

/// The "dumb alternative" (etcd's `quick_test.go` idea): decides linearizability of one key's tiny
/// history by trying every subset of the unknown-outcome operations and every order of the chosen
/// operations. Exponential and obviously right, so it can judge the real checker.
enum BruteForceChecker {
    static func isLinearizable(_ history: [RegisterOperation]) -> Bool {
        let completed = history.filter { if case .ok = $0.outcome { true } else { false } }
        let optional = history.filter { $0.outcome == .unknown }
        precondition(optional.count < 16, "brute force is for tiny histories")
        for mask in 0..<(1 << optional.count) {
            let chosen = completed + optional.indices.filter { mask & (1 << $0) != 0 }.map { optional[$0] }
            var order = Array(chosen.indices)
            repeat {
                if isValid(order.map { chosen[$0] }) { return true }
            } while nextPermutation(&order)
        }
        return false
    }

    /// Whether `sequence` respects real time (nothing placed after an operation that had already
    /// answered before it was invoked) and every reply matches a sequential register.
    private static func isValid(_ sequence: [RegisterOperation]) -> Bool {
        for later in sequence.indices {
            for earlier in 0..<later {
                if let response = sequence[later].response, response < sequence[earlier].invocation { return false }
            }
        }
        var value: RegisterValue? = nil
        for operation in sequence {
            let isOK = if case .ok = operation.outcome { true } else { false }
            switch operation.kind {
            case .read(let observed):
                if isOK && observed != value { return false }
            case .write(let written):
                value = written
            case .delete:
                value = nil
            case .compareAndSet(let expected, let new, let succeeded):
                let matches = value == expected
                if isOK && matches != succeeded { return false }
                if matches { value = new }
            }
        }
        return true
    }

    /// Steps `order` to the next permutation in lexicographic order; `false` after the last one.
    private static func nextPermutation(_ order: inout [Int]) -> Bool {
        guard order.count > 1 else { return false }
        var pivot = order.count - 2
        while pivot >= 0 && order[pivot] >= order[pivot + 1] { pivot -= 1 }
        guard pivot >= 0 else { return false }
        var successor = order.count - 1
        while order[successor] <= order[pivot] { successor -= 1 }
        order.swapAt(pivot, successor)
        order[(pivot + 1)...].reverse()
        return true
    }
}
