import CairnCore
import CairnPlacement
import CairnStorage
import Testing

@testable import CairnNode

/// `ReadCache` against a plain model: a dictionary and a most-recently-used-first list.
@Suite("Read cache")
struct ReadCacheTests {
    /// What the cache must do, written the obvious way.
    struct Model {
        let capacityBytes: Int
        var records: [[UInt8]: ValueRecord] = [:]
        var order: [[UInt8]] = []  // Most recently used first.
        var usedBytes = 0
        var hits: UInt64 = 0
        var misses: UInt64 = 0
        var evictions: UInt64 = 0

        mutating func touch(_ key: [UInt8]) {
            order.removeAll { $0 == key }
            order.insert(key, at: 0)
        }

        mutating func remove(_ key: [UInt8]) {
            guard let record = records.removeValue(forKey: key) else { return }
            order.removeAll { $0 == key }
            usedBytes -= ReadCache.cost(key, record)
        }

        mutating func get(_ key: [UInt8], now: Int64) -> ValueRecord? {
            guard let record = records[key] else {
                misses += 1
                return nil
            }
            if record.isExpired(at: now) {
                remove(key)
                misses += 1
                return nil
            }
            hits += 1
            touch(key)
            return record
        }

        mutating func put(_ key: [UInt8], _ record: ValueRecord) {
            let cost = ReadCache.cost(key, record)
            if let old = records[key] {
                if usedBytes - ReadCache.cost(key, old) + cost <= capacityBytes {
                    records[key] = record
                    usedBytes += cost - ReadCache.cost(key, old)
                    touch(key)
                    return
                }
                remove(key)
            }
            guard cost <= capacityBytes else { return }
            while usedBytes + cost > capacityBytes, let victim = order.last {
                remove(victim)
                evictions += 1
            }
            records[key] = record
            order.insert(key, at: 0)
            usedBytes += cost
        }
    }

    static func check(_ cache: ReadCache, _ model: Model, universe: [[UInt8]], step: Int) {
        #expect(cache.count == model.records.count, "step \(step): count")
        #expect(cache.usedBytes == model.usedBytes, "step \(step): bytes")
        #expect(cache.hits == model.hits && cache.misses == model.misses, "step \(step): hits and misses")
        #expect(cache.evictions == model.evictions, "step \(step): evictions")
        for key in universe where cache.contains(key) != (model.records[key] != nil) {
            Issue.record("step \(step): key \(String(decoding: key, as: UTF8.self)) cached \(cache.contains(key))")
        }
    }

    @Test("random puts, gets, removals, expiries and partition drops behave as the model", arguments: 1...8)
    func matchesModel(seed: UInt64) {
        var prng = SplitMix64(seed: seed)
        let universe = (0..<400).map { Array("key:\($0)".utf8) }
        // Room for about 60 entries of the sizes below: evictions are frequent.
        let capacity = 60 * (ReadCache.entryOverheadBytes + 8 + 40)
        var cache = ReadCache(capacityBytes: capacity)
        var model = Model(capacityBytes: capacity)
        var now: Int64 = 1_000
        for step in 0..<3_000 {
            let key = universe[prng.below(universe.count)]
            switch prng.below(10) {
            case 0...3:
                let size = prng.below(80)
                let expiresAt: Int64? = prng.below(4) == 0 ? now + Int64(prng.below(50)) : nil
                let record = ValueRecord(
                    value: [UInt8](repeating: UInt8(step & 0xFF), count: size), expiresAt: expiresAt)
                cache.put(key, record)
                model.put(key, record)
            case 4...7:
                let got = cache.get(key, now: now)
                #expect(got == model.get(key, now: now), "step \(step): get")
            case 8:
                cache.remove(key)
                model.remove(key)
            default:
                if prng.below(20) == 0 {
                    let start = prng.below(16_384)
                    let slots = start...min(16_383, start + prng.below(4_000))
                    cache.removeAll(inSlots: slots)
                    for dropped in model.records.keys where slots.contains(Int(HashSlot.of(dropped))) {
                        model.remove(dropped)
                    }
                } else {
                    now += Int64(prng.below(20))
                }
            }
            Self.check(cache, model, universe: universe, step: step)
        }
    }

    @Test("many keys: the index grows, and removals leave every other key findable")
    func manyKeys() {
        var cache = ReadCache(capacityBytes: 1 << 30)
        let keys = (0..<20_000).map { Array("user:\($0 * 7919)".utf8) }
        for (position, key) in keys.enumerated() { cache.put(key, ValueRecord(value: Array("\(position)".utf8))) }
        #expect(cache.count == keys.count)
        for (position, key) in keys.enumerated() where position % 3 != 0 { cache.remove(key) }
        #expect(cache.count == (keys.count + 2) / 3)
        for (position, key) in keys.enumerated() {
            let got = cache.get(key, now: 0)
            if position % 3 == 0 {
                #expect(got?.value == Array("\(position)".utf8), "key \(position) lost")
            } else {
                #expect(got == nil, "key \(position) still cached")
            }
        }
        // Put the removed ones back with new values: the holes left behind are reused.
        for (position, key) in keys.enumerated() where position % 3 != 0 {
            cache.put(key, ValueRecord(value: Array("again \(position)".utf8)))
        }
        #expect(cache.count == keys.count)
        for (position, key) in keys.enumerated() {
            let expected = position % 3 == 0 ? "\(position)" : "again \(position)"
            #expect(cache.get(key, now: 0)?.value == Array(expected.utf8))
        }
    }
}
