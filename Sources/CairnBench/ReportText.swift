/// Number formatting for reports, without Foundation.
enum Format {
    /// `value` with exactly `decimals` digits after the point.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return String(value) }
        let whole = UInt64(scaled)
        let integer = whole / UInt64(scale)
        var text = (value < 0 && whole != 0 ? "-" : "") + String(integer)
        if decimals > 0 {
            let fraction = String(whole % UInt64(scale))
            text += "." + String(repeating: "0", count: decimals - fraction.count) + fraction
        }
        return text
    }

    /// Nanoseconds as milliseconds with 3 decimals.
    static func milliseconds(_ nanoseconds: UInt64) -> String { fixed(Double(nanoseconds) / 1e6, 3) }
    static func milliseconds(_ nanoseconds: Double) -> String { fixed(nanoseconds / 1e6, 3) }
    static func seconds(_ nanoseconds: UInt64) -> String { fixed(Double(nanoseconds) / 1e9, 3) }

    static func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func padRight(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

/// The plain-text summary `cairn bench` prints at the end.
public enum ReportText {
    public static func summary(_ report: RunReport) -> String {
        var lines: [String] = []
        var header = "cairn bench: \(report.target) \(report.settings.description) seed=\(report.seed)"
        if let server = report.server { header += " server=\(server)" }
        lines.append(header)
        if let load = report.load {
            lines.append(
                "load  \(load.recorder.operations) records in \(Format.seconds(load.duration)) s"
                    + " (\(Format.fixed(load.throughput, 0)) ops/s), \(load.recorder.errors) errors")
        }
        let run = report.run
        lines.append(
            "run   \(run.recorder.operations) ops in \(Format.seconds(run.duration)) s: "
                + "\(Format.fixed(run.throughput, 0)) ops/s, \(run.recorder.errors) errors"
                + (run.recorder.unsent > 0 ? ", \(run.recorder.unsent) due but never sent (client saturated)" : "")
                + (report.isInterrupted ? " (interrupted: stopped early)" : ""))
        lines.append(
            Format.padRight("latency (ms)", 18)
                + ["count", "mean", "p50", "p90", "p99", "p99.9", "max"].map { Format.padLeft($0, 10) }.joined())
        lines.append(latencyRow("all", run.recorder.overall.summary))
        let usedKinds = OperationKind.allCases.filter { run.recorder.byKind[$0.rawValue].count > 0 }
        if usedKinds.count > 1 {
            for kind in usedKinds { lines.append(latencyRow(kind.name, run.recorder.byKind[kind.rawValue].summary)) }
        }
        lines.append(
            "commands: " + report.commandTotals.map { "\($0.name)=\($0.count)" }.joined(separator: " ")
                + (report.load != nil ? " (load and run)" : ""))
        let errors = run.recorder.errorsByKind.sorted { $0.key < $1.key }
        lines.append(
            "errors: " + (errors.isEmpty ? "none" : errors.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                + (run.recorder.retries > 0 ? " (retries: \(run.recorder.retries))" : ""))
        if run.recorder.circuitsOpened > 0 {
            lines.append(
                "circuit breakers: opened \(run.recorder.circuitsOpened) times, closed \(run.recorder.circuitsClosed) "
                    + "(operations for a node that kept failing failed fast as circuit-open)")
        }
        if let fault = report.fault { lines.append(faultLine(fault, run.recorder.availability)) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func latencyRow(_ name: String, _ summary: LatencySummary) -> String {
        Format.padRight(name, 18) + Format.padLeft(String(summary.count), 10)
            + [
                Format.milliseconds(summary.mean), Format.milliseconds(summary.p50), Format.milliseconds(summary.p90),
                Format.milliseconds(summary.p99), Format.milliseconds(summary.p999), Format.milliseconds(summary.max),
            ].map { Format.padLeft($0, 10) }.joined()
    }

    static func faultLine(_ fault: FaultReport, _ availability: AvailabilityTracker) -> String {
        var line = "fault: '\(fault.command)' at \(Format.seconds(fault.startedAt)) s"
        if let error = fault.launchError { return line + " could not start: \(error)" }
        if let status = fault.exitStatus { line += " (exit status \(status))" }
        if let window = availability.unavailableWindow {
            line +=
                "; unavailable for \(Format.seconds(window.upperBound - window.lowerBound)) s"
                + " (first failure at \(Format.seconds(window.lowerBound)) s,"
                + " first success after it at \(Format.seconds(window.upperBound)) s)"
        } else if let start = availability.firstFailureAfterFault {
            line += "; unavailable from \(Format.seconds(start)) s to the end of the run (no success after it)"
        } else {
            line += "; no request failed after it"
        }
        return line
    }

    /// Two runs side by side with the ratio first/second.
    public static func comparison(_ first: RunReport, _ second: RunReport) -> String {
        let a = first.run.recorder.overall.summary
        let b = second.run.recorder.overall.summary
        let rows: [(String, Double, Double)] = [
            ("throughput ops/s", first.run.throughput, second.run.throughput),
            ("p50 ms", Double(a.p50) / 1e6, Double(b.p50) / 1e6),
            ("p90 ms", Double(a.p90) / 1e6, Double(b.p90) / 1e6),
            ("p99 ms", Double(a.p99) / 1e6, Double(b.p99) / 1e6),
            ("p99.9 ms", Double(a.p999) / 1e6, Double(b.p999) / 1e6),
            ("max ms", Double(a.max) / 1e6, Double(b.max) / 1e6),
            ("errors", Double(first.run.recorder.errors), Double(second.run.recorder.errors)),
        ]
        var lines = [
            Format.padRight("compare", 18) + Format.padLeft(first.target, 22) + Format.padLeft(second.target, 22)
                + Format.padLeft("ratio", 10)
        ]
        for (name, left, right) in rows {
            let decimals = name.hasSuffix("ms") ? 3 : 0
            let ratio = right == 0 ? "-" : Format.fixed(left / right, 2)
            lines.append(
                Format.padRight(name, 18) + Format.padLeft(Format.fixed(left, decimals), 22)
                    + Format.padLeft(Format.fixed(right, decimals), 22) + Format.padLeft(ratio, 10))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The live progress line: elapsed/remaining, ops/s in the last second, p99, errors.
    public static func progress(
        phase: String, elapsed: UInt64, duration: UInt64, lastSecond: SecondSample?, operations: UInt64, errors: UInt64
    ) -> String {
        let remaining = duration > elapsed ? duration - elapsed : 0
        var line = "\(phase) \(Format.fixed(Double(elapsed) / 1e9, 0))s/\(Format.fixed(Double(duration) / 1e9, 0))s"
        line += " (\(Format.fixed(Double(remaining) / 1e9, 0))s left)"
        if let sample = lastSecond {
            line += " \(sample.operations) ops/s p99=\(Format.milliseconds(sample.latency.p99))ms"
            if let target = sample.targetRate { line += " target=\(Format.fixed(target, 0))/s" }
        }
        line += " total=\(operations) errors=\(errors)"
        return line
    }
}
