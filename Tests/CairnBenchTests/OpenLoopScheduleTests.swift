import Testing

@testable import CairnBench

@Suite("open-loop schedule")
struct OpenLoopScheduleTests {
    /// Takes everything due at each time of a fake clock.
    static func take(_ schedule: inout OpenLoopSchedule, at now: UInt64) -> [UInt64] {
        var times: [UInt64] = []
        while let time = schedule.takeDue(now: now) { times.append(time) }
        return times
    }

    @Test("a constant rate gives evenly spaced intended start times")
    func constantRateIsEven() {
        var schedule = OpenLoopSchedule(baseRate: 1000, profile: .constant, duration: 1_000_000_000)
        #expect(Self.take(&schedule, at: 0) == [0])
        #expect(Self.take(&schedule, at: 3_500_000) == [1_000_000, 2_000_000, 3_000_000])
        #expect(schedule.nextIntendedNanoseconds == 4_000_000)
    }

    @Test("a client that falls behind gets the original intended times, not the time it caught up")
    func noCoordinatedOmission() {
        // The fake clock jumps 50 ms (a stalled client or server): the requests due in between keep
        // their intended start times, so latency measured from them includes the stall.
        var schedule = OpenLoopSchedule(baseRate: 100, profile: .constant, duration: 1_000_000_000)
        #expect(Self.take(&schedule, at: 0) == [0])
        let late = Self.take(&schedule, at: 50_000_000)
        #expect(late == [10_000_000, 20_000_000, 30_000_000, 40_000_000, 50_000_000])
        #expect(schedule.dueButNotTaken(now: 95_000_000) == 4)
        #expect(schedule.taken == 6)
    }

    @Test("the schedule ends at the duration and counts every request of the run")
    func endsAtDuration() {
        var schedule = OpenLoopSchedule(baseRate: 2000, profile: .constant, duration: 1_000_000_000)
        var count = 0
        for millisecond in stride(from: UInt64(0), through: 2000, by: 7) {
            count += Self.take(&schedule, at: millisecond * 1_000_000).count
        }
        #expect(count == 2000)
        #expect(schedule.isFinished)
        #expect(schedule.takeDue(now: .max) == nil)
    }

    @Test("a spike profile sends ten times the rate inside the spike window only")
    func spikeWindow() {
        let profile = RateProfile.spike(
            multiplier: 10, lengthNanoseconds: 1_000_000_000, periodNanoseconds: 4_000_000_000,
            firstNanoseconds: 2_000_000_000)
        #expect(
            profile.spikeWindows(duration: 10_000_000_000) == [
                2_000_000_000..<3_000_000_000, 6_000_000_000..<7_000_000_000,
            ])
        var schedule = OpenLoopSchedule(baseRate: 100, profile: profile, duration: 4_000_000_000)
        let times = Self.take(&schedule, at: 4_000_000_000)
        let perSecond = (0..<4).map { second in times.filter { $0 / 1_000_000_000 == UInt64(second) }.count }
        #expect(perSecond == [100, 100, 1000, 100])
    }

    @Test("a ramp rises linearly from its start rate to the base rate")
    func rampRises() {
        let profile = RateProfile.ramp(fromRate: 100)
        #expect(profile.rate(base: 1100, at: 0, duration: 10) == 100)
        #expect(profile.rate(base: 1100, at: 5, duration: 10) == 600)
        #expect(profile.rate(base: 1100, at: 10, duration: 10) == 1100)
        var schedule = OpenLoopSchedule(baseRate: 1100, profile: profile, duration: 2_000_000_000)
        let times = Self.take(&schedule, at: 2_000_000_000)
        // The integral of 100 → 1100 over 2 s is 1200 requests; spacing by 1/rate(t) tracks it closely.
        #expect(abs(times.count - 1200) < 12)
        let firstHalf = times.filter { $0 < 1_000_000_000 }.count
        #expect(firstHalf < times.count - firstHalf)
    }

    @Test("a step profile adds the step rate every interval")
    func stepAdds() {
        let profile = RateProfile.step(everyNanoseconds: 1_000_000_000, byRate: 50)
        var schedule = OpenLoopSchedule(baseRate: 100, profile: profile, duration: 3_000_000_000)
        let times = Self.take(&schedule, at: 3_000_000_000)
        let perSecond = (0..<3).map { second in times.filter { $0 / 1_000_000_000 == UInt64(second) }.count }
        #expect(perSecond == [100, 150, 200])
    }

    @Test("profiles parse from text, and bad text names the flag and what is expected")
    func profileParsing() throws {
        #expect(try RateProfile.parse("constant").get() == .constant)
        #expect(try RateProfile.parse("ramp:from=10").get() == .ramp(fromRate: 10))
        #expect(
            try RateProfile.parse("step:every=10s,by=500").get() == .step(everyNanoseconds: 10_000_000_000, byRate: 500)
        )
        #expect(try RateProfile.parse("spike").get() == RateProfile.spikeDefault)
        #expect(
            try RateProfile.parse("spike:x=5,for=2s,every=10s").get()
                == .spike(
                    multiplier: 5, lengthNanoseconds: 2_000_000_000, periodNanoseconds: 10_000_000_000,
                    firstNanoseconds: 5_000_000_000))
        for bad in ["wobble", "spike:x=-1", "step", "ramp:to=3", "spike:for=20s,every=10s", "step:every=soon"] {
            guard case .failure(let error) = RateProfile.parse(bad) else {
                Issue.record("'\(bad)' parsed")
                continue
            }
            #expect(error.description.hasPrefix("--profile: expected"), "\(error)")
        }
    }

    @Test("durations parse with units and format back")
    func durations() {
        #expect(BenchDuration.parse("30s") == 30_000_000_000)
        #expect(BenchDuration.parse("500ms") == 500_000_000)
        #expect(BenchDuration.parse("2m") == 120_000_000_000)
        #expect(BenchDuration.parse("1.5") == 1_500_000_000)
        #expect(BenchDuration.parse("250us") == 250_000)
        #expect(BenchDuration.parse("soon") == nil)
        #expect(BenchDuration.parse("-1s") == nil)
        #expect(BenchDuration.format(30_000_000_000) == "30s")
        #expect(BenchDuration.format(120_000_000_000) == "2m")
        #expect(BenchDuration.format(1_500_000_000) == "1500ms")
    }
}
