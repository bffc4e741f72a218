/// A minimal JSON text builder (pure modules have no Foundation). Keys are written in the order given.
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    private mutating func key(_ name: String?) {
        separator()
        if let name { text += Self.quoted(name) + ":" }
    }

    mutating func beginObject(_ name: String? = nil) {
        key(name)
        text += "{"
        needsComma.append(false)
    }

    mutating func endObject() {
        needsComma.removeLast()
        text += "}"
    }

    mutating func beginArray(_ name: String? = nil) {
        key(name)
        text += "["
        needsComma.append(false)
    }

    mutating func endArray() {
        needsComma.removeLast()
        text += "]"
    }

    mutating func string(_ name: String?, _ value: String?) {
        key(name)
        text += value.map(Self.quoted) ?? "null"
    }

    mutating func number(_ name: String?, _ value: Double?) {
        key(name)
        guard let value, value.isFinite else {
            text += "null"
            return
        }
        text += value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    mutating func integer(_ name: String?, _ value: UInt64) {
        key(name)
        text += String(value)
    }

    mutating func bool(_ name: String?, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// The `--json` report: every run with its settings, phases, percentiles and per-second series.
/// Latencies are in nanoseconds (`_ns`), rates in operations per second.
public enum ReportJSON {
    public static func render(_ reports: [RunReport]) -> String {
        var json = JSONWriter()
        json.beginObject()
        json.string("tool", "cairn bench")
        json.beginArray("runs")
        for report in reports { write(report, into: &json) }
        json.endArray()
        if reports.count == 2 {
            json.beginObject("ratios")
            let first = reports[0].run
            let second = reports[1].run
            json.number("throughput", second.throughput == 0 ? nil : first.throughput / second.throughput)
            let a = first.recorder.overall.summary
            let b = second.recorder.overall.summary
            json.number("p50", b.p50 == 0 ? nil : Double(a.p50) / Double(b.p50))
            json.number("p99", b.p99 == 0 ? nil : Double(a.p99) / Double(b.p99))
            json.endObject()
        }
        json.endObject()
        return json.text + "\n"
    }

    static func write(_ report: RunReport, into json: inout JSONWriter) {
        let settings = report.settings
        json.beginObject()
        json.string("target", report.target)
        json.string("server", report.server)
        json.integer("seed", report.seed)
        json.bool("interrupted", report.isInterrupted)
        json.beginObject("settings")
        json.string("workload", settings.workload.name)
        json.number("clients", Double(settings.clients))
        json.number("pipeline", Double(settings.pipeline))
        json.number("duration_seconds", Double(settings.duration) / 1e9)
        json.number("rate", settings.rate)
        json.string("profile", settings.rate == nil ? nil : settings.profile.description)
        json.number("keys", Double(settings.records))
        json.string("value_size", settings.valueSize.description)
        json.number("resp", Double(settings.resp))
        json.bool("cluster", settings.isCluster)
        json.endObject()
        if let load = report.load { writePhase(load, into: &json, series: false) }
        writePhase(report.run, into: &json, series: true)
        json.beginObject("commands")
        for (name, count) in report.commandTotals { json.integer(name, count) }
        json.endObject()
        json.beginArray("spike_windows_seconds")
        let windows = settings.rate == nil ? [] : settings.profile.spikeWindows(duration: settings.duration)
        for window in windows {
            json.beginArray()
            json.number(nil, Double(window.lowerBound) / 1e9)
            json.number(nil, Double(window.upperBound) / 1e9)
            json.endArray()
        }
        json.endArray()
        if let fault = report.fault {
            let availability = report.run.recorder.availability
            json.beginObject("fault")
            json.string("command", fault.command)
            json.number("at_seconds", Double(fault.startedAt) / 1e9)
            json.number("exit_status", fault.exitStatus.map(Double.init))
            json.string("launch_error", fault.launchError)
            json.number("first_failure_seconds", availability.firstFailureAfterFault.map { Double($0) / 1e9 })
            json.number(
                "first_success_after_failure_seconds", availability.firstSuccessAfterFailure.map { Double($0) / 1e9 })
            json.number(
                "unavailable_seconds",
                availability.unavailableWindow.map { Double($0.upperBound - $0.lowerBound) / 1e9 })
            json.endObject()
        }
        json.endObject()
    }

    static func writeLatency(_ name: String?, _ summary: LatencySummary, into json: inout JSONWriter) {
        json.beginObject(name)
        json.integer("count", summary.count)
        json.number("mean_ns", summary.mean.rounded())
        json.integer("p50_ns", summary.p50)
        json.integer("p90_ns", summary.p90)
        json.integer("p99_ns", summary.p99)
        json.integer("p999_ns", summary.p999)
        json.integer("max_ns", summary.max)
        json.endObject()
    }

    static func writePhase(_ phase: PhaseReport, into json: inout JSONWriter, series: Bool) {
        let recorder = phase.recorder
        json.beginObject(phase.name)
        json.integer("operations", recorder.operations)
        json.integer("errors", recorder.errors)
        json.integer("unsent", recorder.unsent)
        json.integer("retries", recorder.retries)
        json.integer("circuits_opened", recorder.circuitsOpened)
        json.integer("circuits_closed", recorder.circuitsClosed)
        json.number("duration_seconds", Double(phase.duration) / 1e9)
        json.number("throughput", phase.throughput)
        writeLatency("latency", recorder.overall.summary, into: &json)
        json.beginObject("by_kind")
        for kind in OperationKind.allCases where recorder.byKind[kind.rawValue].count > 0 {
            writeLatency(kind.name, recorder.byKind[kind.rawValue].summary, into: &json)
        }
        json.endObject()
        json.beginObject("commands")
        for command in SentCommand.allCases where recorder.commands[command.rawValue] > 0 {
            json.integer(command.name, recorder.commands[command.rawValue])
        }
        json.endObject()
        json.beginObject("errors_by_kind")
        for (kind, count) in recorder.errorsByKind.sorted(by: { $0.key < $1.key }) { json.integer(kind, count) }
        json.endObject()
        if series {
            json.beginArray("seconds")
            for sample in recorder.seconds {
                json.beginObject()
                json.number("second", Double(sample.second))
                json.integer("operations", sample.operations)
                json.integer("errors", sample.errors)
                json.number("target_rate", sample.targetRate)
                json.integer("p50_ns", sample.latency.p50)
                json.integer("p90_ns", sample.latency.p90)
                json.integer("p99_ns", sample.latency.p99)
                json.integer("p999_ns", sample.latency.p999)
                json.integer("max_ns", sample.latency.max)
                json.beginObject("errors_by_kind")
                for (kind, count) in sample.errorsByKind { json.integer(kind, count) }
                json.endObject()
                json.endObject()
            }
            json.endArray()
        }
        json.endObject()
    }
}
