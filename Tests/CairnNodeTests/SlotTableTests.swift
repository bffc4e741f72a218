import Testing

@testable import CairnNode

extension Int: SlotKey {
    public var slotHash: UInt64 { UInt64(bitPattern: Int64(self)) }
}

extension String: SlotKey {
    public var slotHash: UInt64 { utf8.reduce(14_695_981_039_346_656_037) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 } }
}

@Suite("SlotTable: a dictionary read and changed in place")
struct SlotTableTests {
    /// A value with a reference inside, so that copies and releases are observable.
    struct Value: Equatable, Sendable {
        var items: [Int]
        var name: String
    }

    /// A key whose hash collides with many others, so lookups probe and removals shift runs back.
    struct Crowded: SlotKey, CustomStringConvertible {
        let id: Int
        var slotHash: UInt64 { UInt64(id % 3) }
        var description: String { "crowded \(id)" }
    }

    @Test("behaves as a dictionary against a model, through inserts, in-place changes, removals and reuse")
    func matchesDictionaryModel() {
        checkAgainstModel(keys: { $0 }, range: 40)
        checkAgainstModel(keys: { $0 }, range: 400)
        checkAgainstModel(keys: { Crowded(id: $0) }, range: 60)
    }

    func checkAgainstModel<Key: SlotKey>(keys makeKey: (Int) -> Key, range: Int) {
        var table = SlotTable<Key, Value>()
        var model: [Key: Value] = [:]
        var state: UInt64 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for step in 0..<5000 {
            let number = next(range)
            let key = makeKey(number)
            switch next(6) {
            case 0:
                table[key] = Value(items: [step], name: "k\(number)")
                model[key] = Value(items: [step], name: "k\(number)")
            case 1:
                #expect(table.removeValue(forKey: key) == model.removeValue(forKey: key))
            case 2:
                table[key] = nil
                model[key] = nil
            case 3:
                if table.contains(key) {
                    table[existing: key].items.append(step)
                    model[key]!.items.append(step)
                }
            case 4:
                table[key]?.name += "!"
                model[key]?.name += "!"
            default:
                if model[key] != nil { #expect(table[existing: key] == model[key]) }
            }
            #expect(table.count == model.count)
            #expect(table[key] == model[key])
        }
        #expect(Set(table.keys) == Set(model.keys))
        #expect(table.entries.count == model.count)
        for (key, value) in table.entries { #expect(model[key] == value) }
        #expect(table.allValues.count == model.count)
    }

    @Test("is a value: a copy does not see later changes to the original, nor the original the copy's")
    func copyOnWrite() {
        var original = SlotTable<String, Value>()
        original["a"] = Value(items: [1], name: "a")
        original["b"] = Value(items: [2], name: "b")
        var copy = original
        original[existing: "a"].items.append(10)
        copy["b"] = nil
        copy["c"] = Value(items: [3], name: "c")
        #expect(original["a"]?.items == [1, 10])
        #expect(copy["a"]?.items == [1])
        #expect(original["b"] != nil && copy["b"] == nil)
        #expect(original["c"] == nil && copy["c"] != nil)
        let removed = copy.removeValue(forKey: "a")
        #expect(removed?.items == [1])
        #expect(original["a"]?.items == [1, 10])
    }

    @Test("grows past its first buffer and frees every value it held")
    func growsAndReleases() {
        final class Token: Sendable {}
        weak var watched: Token?
        do {
            let token = Token()
            watched = token
            var table = SlotTable<Int, [Token]>()
            for key in 0..<100 { table[key] = [token] }
            for key in stride(from: 0, to: 100, by: 2) { table[key] = nil }
            for key in 100..<120 { table[key] = [token] }
            #expect(table.count == 70)
            #expect(table[existing: 101].count == 1)
            var copy = table
            copy[existing: 101].append(token)
            #expect(table[existing: 101].count == 1)
        }
        #expect(watched == nil, "the tables released every value")
    }
}
