import CairnCore
import Testing

@testable import CairnSim

/// The simulator's own parts, checked alone: the event queue, the state machine, the options.
@Suite("simulator parts")
struct SimulatorPartsTests {
    @Test("events come out by time, and in scheduling order at equal times")
    func eventQueueOrder() {
        var queue = EventQueue<Int>()
        var prng = SplitMix64(seed: 9)
        var expected: [(UInt64, Int)] = []
        for payload in 0..<500 {
            let time = UInt64(prng.below(50))
            queue.push(payload, at: time)
            expected.append((time, payload))
        }
        expected.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var popped: [(UInt64, Int)] = []
        while let (time, payload) = queue.pop() { popped.append((time, payload)) }
        #expect(popped.map(\.0) == expected.map(\.0))
        #expect(popped.map(\.1) == expected.map(\.1))
    }

    @Test(
        "commands survive encoding",
        arguments: [
            KVCommand.write(key: Array("k1".utf8), value: Array("c1.1".utf8)),
            .compareAndSet(key: Array("k2".utf8), expected: nil, new: Array("c2.1".utf8)),
            .compareAndSet(key: Array("k2".utf8), expected: [], new: Array("c2.2".utf8)),
            .delete(key: Array("k3".utf8)),
        ])
    func commandRoundTrip(command: KVCommand) {
        #expect(KVCommand(decoding: command.encoded()) == command)
    }

    @Test("bytes that are not a command do not decode")
    func malformedCommand() {
        #expect(KVCommand(decoding: []) == nil)
        #expect(KVCommand(decoding: Array("x".utf8)) == nil)
        #expect(KVCommand(decoding: KVCommand.delete(key: [1]).encoded() + [0]) == nil)
    }

    @Test("the state machine applies writes, compare-and-sets and deletes; its snapshot restores it")
    func stateMachine() {
        var machine = KVStateMachine()
        let key = Array("k".utf8)
        #expect(machine.apply(.compareAndSet(key: key, expected: nil, new: [1])) == .swapped(true))
        #expect(machine.apply(.compareAndSet(key: key, expected: nil, new: [2])) == .swapped(false))
        #expect(machine.apply(.write(key: Array("j".utf8), value: [3])) == .done)
        #expect(machine.read(key) == [1])
        let restored = KVStateMachine(snapshot: machine.snapshotData())
        #expect(restored == machine)
        #expect(restored.digest == machine.digest)
        #expect(machine.apply(.delete(key: key)) == .done)
        #expect(machine.read(key) == nil)
        #expect(machine.digest != restored.digest)
    }

    @Test("the options are a function of the seed")
    func optionsFollowSeed() {
        #expect(SwarmOptions(seed: 5, nodeCount: 3) == SwarmOptions(seed: 5, nodeCount: 3))
        #expect(SwarmOptions(seed: 5, nodeCount: 3) != SwarmOptions(seed: 6, nodeCount: 3))
        let spread = (1...200 as ClosedRange<UInt64>).map { SwarmOptions(seed: $0, nodeCount: 3) }
        #expect(spread.contains { !$0.preVote } && spread.contains { $0.preVote })
        #expect(
            spread.contains { $0.partitionIntervalMsMean == nil } && spread.contains { $0.crashIntervalMsMean != nil })
        #expect(spread.contains { $0.diskLatencyMsMax == 0 } && spread.contains { $0.diskLatencyMsMax > 20 })
    }
}
