import CairnCore
import Testing

@testable import CairnPlacement

@Suite("partition table")
struct PartitionTableTests {
    static let counts = [1, 2, 3, 7, 64, 100, 128, 1000, 4096, 16383, 16384]

    @Test("partitions are contiguous, cover every slot once, and differ in size by at most one", arguments: counts)
    func contiguousAndEven(count: Int) throws {
        let table = try PartitionTable(count: count)
        var nextSlot = 0
        var sizes: [Int] = []
        for partition in table.partitions {
            let slots = table.slots(of: partition)
            #expect(Int(slots.lowerBound) == nextSlot, "partition \(partition) of \(count) starts at a gap")
            nextSlot = Int(slots.upperBound) + 1
            sizes.append(slots.count)
        }
        #expect(nextSlot == HashSlot.count, "\(count) partitions end at \(nextSlot)")
        #expect(table.partitions.count == count)
        let smallest = try #require(sizes.min())
        let largest = try #require(sizes.max())
        #expect(largest - smallest <= 1, "\(count) partitions: sizes \(smallest)...\(largest)")
        #expect(smallest == HashSlot.count / count)
    }

    @Test("partition(ofSlot:) agrees with slots(of:) for every slot", arguments: counts)
    func lookupAgreesWithRanges(count: Int) throws {
        let table = try PartitionTable(count: count)
        for partition in table.partitions {
            for slot in table.slots(of: partition) {
                guard table.partition(ofSlot: slot) == partition else {
                    Issue.record(
                        "count \(count): slot \(slot) maps to \(table.partition(ofSlot: slot)), not \(partition)")
                    return
                }
            }
        }
    }

    @Test("doubling the count cuts every partition exactly in two", arguments: [1, 3, 64, 100, 128, 4096])
    func doublingSplits(count: Int) throws {
        let table = try PartitionTable(count: count)
        let doubled = try PartitionTable(count: count * 2)
        for partition in table.partitions {
            let whole = table.slots(of: partition)
            let low = doubled.slots(of: PartitionID(partition.rawValue * 2))
            let high = doubled.slots(of: PartitionID(partition.rawValue * 2 + 1))
            #expect(low.lowerBound == whole.lowerBound, "count \(count) partition \(partition)")
            #expect(low.upperBound + 1 == high.lowerBound, "count \(count) partition \(partition)")
            #expect(high.upperBound == whole.upperBound, "count \(count) partition \(partition)")
        }
    }

    @Test("a key maps through its slot")
    func keys() throws {
        let table = try PartitionTable(count: 128)
        #expect(table.slots(of: 86).contains(11058))
        #expect(table.partition(ofKey: Array("somekey".utf8)) == 86, "slot 11058 at 128 slots per partition")
        #expect(try PartitionTable(count: 16384).partition(ofKey: Array("foo".utf8)) == 12182)
        #expect(try PartitionTable(count: 1).partition(ofKey: Array("foo".utf8)) == 0)
    }

    @Test("the default count is valid and leaves whole replicas to balance")
    func defaultCount() throws {
        let table = try PartitionTable()
        #expect(table.count == PartitionTable.countDefault)
        #expect((PartitionTable.countMin...PartitionTable.countMax).contains(PartitionTable.countDefault))
        #expect(HashSlot.count % PartitionTable.countDefault == 0, "every partition has the same number of slots")
        #expect(PartitionTable.countDefault * 3 / 30 >= 8, "30 nodes still hold at least 8 replicas each")
        #expect("\(table)" == "128 partitions of 128+ slots")
    }

    @Test("a count outside 1...16384 is refused with a clear message", arguments: [0, -1, 16385, Int.max])
    func badCounts(count: Int) {
        #expect(throws: PartitionTableError.countOutOfRange(count: count, min: 1, max: 16384)) {
            try PartitionTable(count: count)
        }
    }

    @Test("the error names the value, the rule and the default")
    func errorText() {
        let error = PartitionTableError.countOutOfRange(count: 0, min: 1, max: 16384)
        #expect(
            error.description
                == "partition count (0) must be in 1...16384: each partition is at least one of the 16384 hash "
                + "slots; 128 is the default")
    }

    @Test("partition IDs order and print as their numbers")
    func identifiers() {
        #expect([PartitionID(3), 1, 2].sorted() == [1, 2, 3])
        #expect("\(PartitionID(7))" == "7")
        #expect(PartitionID(9).index == 9)
    }
}
