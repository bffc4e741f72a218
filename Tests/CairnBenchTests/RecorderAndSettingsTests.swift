import Testing

@testable import CairnBench

@Suite("recorder, reports and settings")
struct RecorderAndSettingsTests {
    @Test("the recorder keeps a per-second series, errors by kind and latency from the intended start")
    func perSecondSeries() {
        var recorder = PhaseRecorder(targetRate: { Double(100 * ($0 + 1)) })
        recorder.succeeded(.read, intended: 0, completed: 2_000_000)
        recorder.succeeded(.update, intended: 500_000_000, completed: 900_000_000)
        recorder.failed(.read, errorKind: "timeout", completed: 1_200_000_000)
        recorder.succeeded(.read, intended: 3_000_000_000, completed: 3_000_001_000)
        recorder.finish(at: 3_500_000_000)
        #expect(recorder.seconds.map(\.second) == [0, 1, 2, 3])
        #expect(recorder.seconds.map(\.operations) == [2, 0, 0, 1])
        #expect(recorder.seconds[1].errors == 1 && recorder.seconds[1].errorsByKind.first?.kind == "timeout")
        #expect(recorder.seconds[0].latency.max == 400_000_000)
        #expect(recorder.seconds.map(\.targetRate) == [100, 200, 300, 400])
        #expect(recorder.operations == 3 && recorder.errors == 1)
        #expect(recorder.byKind[OperationKind.read.rawValue].count == 2)
    }

    @Test("with a fixed duration, late completions count in the last second and empty seconds are kept")
    func lastSecondClamped() {
        var recorder = PhaseRecorder(duration: 3_000_000_000)
        recorder.succeeded(.read, intended: 0, completed: 500_000_000)
        recorder.succeeded(.read, intended: 2_900_000_000, completed: 3_000_400_000)
        recorder.finish(at: 3_000_500_000)
        #expect(recorder.seconds.map(\.second) == [0, 1, 2])
        #expect(recorder.seconds.map(\.operations) == [1, 0, 1])
        var load = PhaseRecorder()
        load.succeeded(.insert, intended: 0, completed: 1_200_000_000)
        load.finish(at: 1_300_000_000)
        #expect(load.seconds.map(\.operations) == [0, 1])
    }

    @Test("the unavailability window runs from the first failure after the fault to the next success")
    func availabilityWindow() {
        var recorder = PhaseRecorder()
        recorder.failed(.read, errorKind: "ERR", completed: 100)
        recorder.availability.faultStarted(at: 1000)
        recorder.succeeded(.read, intended: 1000, completed: 1100)
        recorder.failed(.read, errorKind: "connection-refused", completed: 2000)
        recorder.failed(.read, errorKind: "connection-refused", completed: 2500)
        recorder.succeeded(.read, intended: 2600, completed: 3000)
        recorder.failed(.read, errorKind: "timeout", completed: 4000)
        #expect(recorder.availability.unavailableWindow == 2000..<3000)
    }

    static func parse(_ text: String) -> Result<BenchSettings.Parsed, BenchInputError> {
        BenchSettings.parse(text.split(separator: " ").map(String.init))
    }

    @Test("flags parse into settings")
    func flagsParse() throws {
        guard
            case .settings(let settings) = try Self.parse(
                "--target 127.0.0.1:6379,localhost:7000 --workload ycsb-b -c 8 -P 4 --duration 3s --rate 500 --profile spike:x=3 --keys 77 --value-size 10..20 --json a.json --html=b.html --resp 3 --seed 9 --quiet --retries 0 --no-breakers"
            ).get()
        else {
            Issue.record("no settings")
            return
        }
        #expect(settings.targets == [Endpoint(host: "127.0.0.1", port: 6379), Endpoint(host: "localhost", port: 7000)])
        #expect(settings.workload.name == "ycsb-b" && settings.clients == 8 && settings.pipeline == 4)
        #expect(settings.duration == 3_000_000_000 && settings.rate == 500 && settings.records == 77)
        #expect(
            settings.valueSize == ValueSize(10, 20) && settings.jsonPath == "a.json" && settings.htmlPath == "b.html")
        #expect(settings.resp == 3 && settings.seed == 9 && settings.isQuiet)
        #expect(settings.retries == 0 && !settings.usesBreakers)
        #expect(BenchSettings().retries == 2 && BenchSettings().usesBreakers)
        #expect(try Self.parse("--help").get() == .help)
    }

    @Test("bad flags name the flag and what is expected")
    func badFlags() {
        let cases: [(String, String)] = [
            ("--workload nope", "--workload: expected one of set, get, mixed"),
            ("--rate fast", "--rate: expected operations per second"),
            ("--rate 0", "--rate: expected operations per second"),
            ("-c 0", "--clients: expected a number of connections"),
            ("-P x", "--pipeline: expected"),
            ("--duration forever", "--duration: expected a duration"),
            ("--target nohost", "--target: expected HOST:PORT"),
            ("--target 1.2.3.4:99999", "--target: expected HOST:PORT"),
            ("--value-size 9..3", "--value-size: expected"),
            ("--profile spike", "--profile spike:x=10"),
            ("--fault true", "--fault CMD and --fault-at T go together"),
            ("--fault true --fault-at 20s --duration 10s", "--fault-at (20s) must be inside --duration (10s)"),
            ("--cluster --workload ycsb-e", "--workload ycsb-e scans keys"),
            ("--bogus", "unknown flag '--bogus'"),
            ("--keys", "--keys needs a value"),
            ("--retries 11", "--retries: expected a number from 0 to 10"),
        ]
        for (text, prefix) in cases {
            guard case .failure(let error) = Self.parse(text) else {
                Issue.record("'\(text)' was accepted")
                continue
            }
            #expect(error.description.hasPrefix(prefix), "'\(text)': \(error)")
        }
    }

    static func sampleReport() -> RunReport {
        var settings = BenchSettings()
        settings.rate = 100
        settings.profile = .spike(
            multiplier: 10, lengthNanoseconds: 1_000_000_000, periodNanoseconds: 3_000_000_000,
            firstNanoseconds: 1_000_000_000)
        settings.duration = 3_000_000_000
        var recorder = PhaseRecorder(targetRate: { _ in 100 })
        for index in 0..<300 {
            recorder.countReply(.set)
            recorder.succeeded(
                .update, intended: UInt64(index) * 10_000_000, completed: UInt64(index) * 10_000_000 + 300_000)
        }
        recorder.availability.faultStarted(at: 1_500_000_000)
        recorder.failed(.update, errorKind: "connection-refused", completed: 1_600_000_000)
        recorder.succeeded(.update, intended: 1_700_000_000, completed: 1_800_000_000)
        recorder.finish(at: 3_000_000_000)
        return RunReport(
            target: "127.0.0.1:7379", settings: settings, seed: 5, server: "cairn <test>", load: nil,
            run: PhaseReport(name: "run", duration: 3_000_000_000, recorder: recorder),
            fault: FaultReport(command: "kill -9 1", startedAt: 1_500_000_000, exitStatus: 0))
    }

    @Test("the text, JSON and HTML reports carry the counts, the fault window and the spike windows")
    func reportsRender() {
        let report = Self.sampleReport()
        let text = ReportText.summary(report)
        #expect(text.contains("commands: set=300"))
        #expect(text.contains("unavailable for 0.200 s"))
        let json = ReportJSON.render([report, report])
        #expect(json.contains("\"commands\":{\"set\":300}"))
        #expect(json.contains("\"spike_windows_seconds\":[[1,2]]"))
        #expect(json.contains("\"unavailable_seconds\":0.2"))
        #expect(json.contains("\"ratios\":{\"throughput\":1"))
        let html = ReportHTML.render([report])
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.contains("<svg") && html.contains("polyline") && html.contains("<title>spike</title>"))
        #expect(html.contains("cairn &lt;test&gt;"))
        #expect(ReportText.comparison(report, report).contains("1.00"))
    }

    @Test("numbers format without Foundation")
    func formatting() {
        #expect(Format.fixed(3.14159, 2) == "3.14")
        #expect(Format.fixed(-0.5, 1) == "-0.5")
        #expect(Format.fixed(1000, 0) == "1000")
        #expect(Format.milliseconds(UInt64(1_234_567)) == "1.235")
        #expect(JSONWriter.quoted("a\"b\n\u{1}") == "\"a\\\"b\\n\\u0001\"")
    }
}
