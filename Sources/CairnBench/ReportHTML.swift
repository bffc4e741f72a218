/// One line of a chart.
struct ChartSeries {
    var name: String
    var color: String
    var points: [(x: Double, y: Double)]
    var isDashed = false
}

/// An SVG line chart with a time axis in seconds, shaded windows (spikes, unavailability) and marks
/// (the fault). Written by hand so the report needs nothing but a browser.
struct SVGChart {
    var title: String
    var yLabel: String
    var xMax: Double
    var series: [ChartSeries]
    var isLogarithmic = false
    var shadedWindows: [(start: Double, end: Double, color: String, label: String)] = []
    var marks: [(x: Double, color: String, label: String)] = []

    static let width = 920.0
    static let height = 300.0
    static let left = 76.0
    static let right = 150.0
    static let top = 30.0
    static let bottom = 40.0

    static var plotWidth: Double { width - left - right }
    static var plotHeight: Double { height - top - bottom }

    /// Maps data to drawing coordinates: seconds on x, linear or base-10 logarithmic y.
    struct Scale {
        var xMax: Double
        var yMin: Double
        var yMax: Double
        var isLogarithmic: Bool
        /// y tick values (exponents of ten on a logarithmic scale).
        var ticks: [Double]

        func x(_ value: Double) -> Double { SVGChart.left + min(max(value / xMax, 0), 1) * SVGChart.plotWidth }

        func y(_ value: Double) -> Double {
            let scaled = isLogarithmic ? BenchMath.log(max(value, 1e-9)) / BenchMath.log(10) : value
            let fraction = (scaled - yMin) / max(yMax - yMin, 1e-12)
            return SVGChart.top + SVGChart.plotHeight - min(max(fraction, 0), 1) * SVGChart.plotHeight
        }
    }

    /// The scale that fits every plotted value, with round ticks.
    func scale() -> Scale {
        let values = series.flatMap { $0.points.map(\.y) }.filter { $0.isFinite && (!isLogarithmic || $0 > 0) }
        if isLogarithmic {
            let low = (BenchMath.log(max(values.min() ?? 0.01, 1e-6)) / BenchMath.log(10)).rounded(.down)
            let high = max((BenchMath.log(max(values.max() ?? 1, 1e-6)) / BenchMath.log(10)).rounded(.up), low + 1)
            return Scale(
                xMax: max(xMax, 1), yMin: low, yMax: high, isLogarithmic: true,
                ticks: stride(from: low, through: high, by: 1).map { $0 })
        }
        let step = Self.niceStep(max(values.max() ?? 1, 1e-9) * 1.1 / 5)
        let top = (max(values.max() ?? 1, 1e-9) * 1.1 / step).rounded(.up) * step
        return Scale(
            xMax: max(xMax, 1), yMin: 0, yMax: top, isLogarithmic: false,
            ticks: stride(from: 0, through: top + step / 2, by: step).map { $0 })
    }

    func render() -> String {
        let scale = scale()
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\""
        svg += " class=\"chart\" role=\"img\" aria-label=\"\(Self.escape(title))\""
        svg += " font-family=\"Helvetica,Arial,sans-serif\" font-size=\"11\" fill=\"#445\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(Int(Self.left))\" y=\"18\" font-size=\"13\" font-weight=\"600\" fill=\"#1d2330\">"
        svg += Self.escape(title) + "</text>"
        for window in shadedWindows {
            let x0 = scale.x(window.start)
            let x1 = scale.x(window.end)
            svg += "<rect x=\"\(f(x0))\" y=\"\(f(Self.top))\" width=\"\(f(max(x1 - x0, 1)))\""
            svg += " height=\"\(f(Self.plotHeight))\" fill=\"\(window.color)\">"
            svg += "<title>\(Self.escape(window.label))</title></rect>"
        }
        svg += axes(scale)
        for mark in marks {
            let x = f(scale.x(mark.x))
            svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(f(Self.top))\" y2=\"\(f(Self.top + Self.plotHeight))\""
            svg += " stroke=\"\(mark.color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(f(scale.x(mark.x) + 4))\" y=\"\(f(Self.top + 12))\" fill=\"\(mark.color)\">"
            svg += Self.escape(mark.label) + "</text>"
        }
        svg += lines(scale)
        return svg + "</svg>"
    }

    /// Grid lines, tick labels, the frame and the y label.
    func axes(_ scale: Scale) -> String {
        var svg = ""
        for tick in scale.ticks {
            let value = scale.isLogarithmic ? Self.power10(tick) : tick
            let y = f(scale.y(value))
            svg += "<line x1=\"\(f(Self.left))\" x2=\"\(f(Self.left + Self.plotWidth))\" y1=\"\(y)\" y2=\"\(y)\""
            svg += " stroke=\"#e6e8ef\"/>"
            svg += "<text x=\"\(f(Self.left - 6))\" y=\"\(f(scale.y(value) + 4))\" text-anchor=\"end\">"
            svg += Self.label(value) + "</text>"
        }
        let bottom = Self.top + Self.plotHeight
        for tick in stride(from: 0, through: scale.xMax, by: max(Self.niceStep(scale.xMax / 10), 1)) {
            let x = f(scale.x(tick))
            svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(f(bottom))\" y2=\"\(f(bottom + 4))\" stroke=\"#889\"/>"
            svg += "<text x=\"\(x)\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\">\(Self.label(tick))s</text>"
        }
        svg += "<rect x=\"\(f(Self.left))\" y=\"\(f(Self.top))\" width=\"\(f(Self.plotWidth))\""
        svg += " height=\"\(f(Self.plotHeight))\" fill=\"none\" stroke=\"#bbc\"/>"
        let middle = f(Self.top + Self.plotHeight / 2)
        svg += "<text x=\"14\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(middle))\">"
        return svg + Self.escape(yLabel) + "</text>"
    }

    /// The series as polylines, and their legend on the right.
    func lines(_ scale: Scale) -> String {
        var svg = ""
        for (index, line) in series.enumerated() {
            let dash = line.isDashed ? " stroke-dasharray=\"6 4\"" : ""
            let points = line.points.filter { $0.y.isFinite && (!isLogarithmic || $0.y > 0) }
            let path = points.map { "\(f(scale.x($0.x))),\(f(scale.y($0.y)))" }.joined(separator: " ")
            if !path.isEmpty {
                svg +=
                    "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.8\"\(dash)/>"
            }
            let legendX = Self.width - Self.right
            let legendY = Self.top + 14 + Double(index) * 18
            svg += "<line x1=\"\(f(legendX + 12))\" x2=\"\(f(legendX + 34))\" y1=\"\(f(legendY - 4))\""
            svg += " y2=\"\(f(legendY - 4))\" stroke=\"\(line.color)\" stroke-width=\"3\"\(dash)/>"
            svg +=
                "<text x=\"\(f(legendX + 40))\" y=\"\(f(legendY))\" font-size=\"12\">\(Self.escape(line.name))</text>"
        }
        return svg
    }

    func f(_ value: Double) -> String { Format.fixed(value, 1) }

    /// 10 to an integral power, by repeated multiplication so axis labels come out round.
    static func power10(_ exponent: Double) -> Double {
        var value = 1.0
        for _ in 0..<Int(abs(exponent)) { value = exponent < 0 ? value / 10 : value * 10 }
        return value
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let exponent = (BenchMath.log(raw) / BenchMath.log(10)).rounded(.down)
        let base = power10(exponent)
        for multiple in [1.0, 2, 5, 10] where base * multiple >= raw * 0.999 { return base * multiple }
        return base * 10
    }

    static func label(_ value: Double) -> String {
        if value >= 1_000_000 {
            return Format.fixed(value / 1_000_000, value.truncatingRemainder(dividingBy: 1_000_000) == 0 ? 0 : 1) + "M"
        }
        if value >= 10_000 {
            return Format.fixed(value / 1000, value.truncatingRemainder(dividingBy: 1000) == 0 ? 0 : 1) + "k"
        }
        if value >= 1 || value == 0 { return Format.fixed(value, value == value.rounded() ? 0 : 1) }
        if value >= 0.01 { return Format.fixed(value, 2) }
        return Format.fixed(value, 3)
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// The `--html` report: one self-contained page with a summary table and SVG plots of throughput
/// and latency percentiles over time, spike windows shaded and the fault marked.
public enum ReportHTML {
    static let style = """
        body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:960px;color:#1d2330}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #dde}
        .sub{color:#667;margin:0 0 12px}table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;text-align:right}
        th:first-child,td:first-child{text-align:left}tr:nth-child(even){background:#f5f6fa}th{border-bottom:1px solid #ccd}
        .kpi{display:inline-block;margin:6px 18px 6px 0}.kpi b{display:block;font-size:22px}
        .chart{width:100%;height:auto;margin:6px 0}.bad{color:#b3261e}
        """

    public static func render(_ reports: [RunReport]) -> String {
        var html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>cairn bench report</title>"
        html += "<style>\(style)</style></head><body>"
        html += "<h1>cairn bench</h1>"
        if let first = reports.first {
            html += "<p class=\"sub\">\(SVGChart.escape(first.settings.description)) · seed \(first.seed)</p>"
        }
        if reports.count == 2 { html += comparisonTable(reports[0], reports[1]) }
        if reports.count == 2 { html += comparisonCharts(reports[0], reports[1]) }
        for report in reports { html += section(report) }
        html += "<p class=\"sub\">Latency is measured from each request's intended start time"
        html +=
            reports.first?.settings.rate == nil
            ? " (closed loop: the time it was sent)." : " (open loop: no coordinated omission)."
        html += " Percentiles come from a log-linear histogram with at most 0.4% relative error.</p>"
        return html + "</body></html>\n"
    }

    static func comparisonTable(_ first: RunReport, _ second: RunReport) -> String {
        let a = first.run.recorder.overall.summary
        let b = second.run.recorder.overall.summary
        var html = "<h2>Comparison</h2><table><tr><th></th><th>\(SVGChart.escape(first.target))</th>"
        html += "<th>\(SVGChart.escape(second.target))</th><th>ratio</th></tr>"
        let rows: [(String, Double, Double, Int)] = [
            ("throughput (ops/s)", first.run.throughput, second.run.throughput, 0),
            ("p50 (ms)", Double(a.p50) / 1e6, Double(b.p50) / 1e6, 3),
            ("p99 (ms)", Double(a.p99) / 1e6, Double(b.p99) / 1e6, 3),
            ("p99.9 (ms)", Double(a.p999) / 1e6, Double(b.p999) / 1e6, 3),
            ("max (ms)", Double(a.max) / 1e6, Double(b.max) / 1e6, 3),
            ("errors", Double(first.run.recorder.errors), Double(second.run.recorder.errors), 0),
        ]
        for (name, left, right, decimals) in rows {
            html +=
                "<tr><td>\(name)</td><td>\(Format.fixed(left, decimals))</td><td>\(Format.fixed(right, decimals))</td>"
            html += "<td>\(right == 0 ? "-" : Format.fixed(left / right, 2))</td></tr>"
        }
        return html + "</table>"
    }

    static func comparisonCharts(_ first: RunReport, _ second: RunReport) -> String {
        let xMax = Double(first.settings.duration) / 1e9
        func points(_ report: RunReport, _ value: (SecondSample) -> Double) -> [(x: Double, y: Double)] {
            report.run.recorder.seconds.map { (Double($0.second) + 0.5, value($0)) }
        }
        let throughput = SVGChart(
            title: "Throughput, both endpoints", yLabel: "ops/s", xMax: xMax,
            series: [
                ChartSeries(name: first.target, color: "#2563eb", points: points(first) { Double($0.operations) }),
                ChartSeries(name: second.target, color: "#d97706", points: points(second) { Double($0.operations) }),
            ])
        let latency = SVGChart(
            title: "p99 latency, both endpoints", yLabel: "ms (log)", xMax: xMax,
            series: [
                ChartSeries(
                    name: first.target, color: "#2563eb", points: points(first) { Double($0.latency.p99) / 1e6 }),
                ChartSeries(
                    name: second.target, color: "#d97706", points: points(second) { Double($0.latency.p99) / 1e6 }),
            ], isLogarithmic: true)
        return throughput.render() + latency.render()
    }

    static func section(_ report: RunReport) -> String {
        let run = report.run
        let recorder = run.recorder
        let summary = recorder.overall.summary
        var html =
            "<h2>\(SVGChart.escape(report.target))\(report.server.map { " · " + SVGChart.escape($0) } ?? "")</h2>"
        html += "<div>"
        let kpis: [(String, String)] = [
            ("ops/s", Format.fixed(run.throughput, 0)), ("operations", String(recorder.operations)),
            ("p50", Format.milliseconds(summary.p50) + " ms"), ("p99", Format.milliseconds(summary.p99) + " ms"),
            ("p99.9", Format.milliseconds(summary.p999) + " ms"), ("max", Format.milliseconds(summary.max) + " ms"),
            ("errors", String(recorder.errors)),
        ]
        for (name, value) in kpis { html += "<span class=\"kpi\">\(name)<b>\(value)</b></span>" }
        html += "</div>"
        if let load = report.load {
            html +=
                "<p class=\"sub\">Load phase: \(load.recorder.operations) records in \(Format.seconds(load.duration)) s"
            html += " (\(Format.fixed(load.throughput, 0)) ops/s).</p>"
        }
        if let fault = report.fault {
            html += "<p class=\"bad\">\(SVGChart.escape(ReportText.faultLine(fault, recorder.availability)))</p>"
        }
        html += latencyTable(recorder)
        let xMax = Double(report.settings.duration) / 1e9
        var windows: [(start: Double, end: Double, color: String, label: String)] = []
        if report.settings.rate != nil {
            for window in report.settings.profile.spikeWindows(duration: report.settings.duration) {
                windows.append(
                    (Double(window.lowerBound) / 1e9, Double(window.upperBound) / 1e9, "rgba(245,158,11,0.18)", "spike")
                )
            }
        }
        if let window = recorder.availability.unavailableWindow {
            windows.append(
                (
                    Double(window.lowerBound) / 1e9, Double(window.upperBound) / 1e9, "rgba(220,38,38,0.18)",
                    "unavailable"
                ))
        }
        var marks: [(x: Double, color: String, label: String)] = []
        if let fault = report.fault { marks.append((Double(fault.startedAt) / 1e9, "#b91c1c", "fault")) }
        let seconds = recorder.seconds
        func points(_ value: (SecondSample) -> Double) -> [(x: Double, y: Double)] {
            seconds.map { (Double($0.second) + 0.5, value($0)) }
        }
        var throughputSeries = [
            ChartSeries(name: "completed/s", color: "#2563eb", points: points { Double($0.operations) }),
            ChartSeries(name: "errors/s", color: "#dc2626", points: points { Double($0.errors) }),
        ]
        if report.settings.rate != nil {
            throughputSeries.append(
                ChartSeries(name: "target/s", color: "#6b7280", points: points { $0.targetRate ?? 0 }, isDashed: true))
        }
        html += SVGChart(
            title: "Throughput per second", yLabel: "ops/s", xMax: xMax, series: throughputSeries,
            shadedWindows: windows, marks: marks
        ).render()
        let latencySeries = [
            ChartSeries(name: "p50", color: "#16a34a", points: points { Double($0.latency.p50) / 1e6 }),
            ChartSeries(name: "p90", color: "#0891b2", points: points { Double($0.latency.p90) / 1e6 }),
            ChartSeries(name: "p99", color: "#7c3aed", points: points { Double($0.latency.p99) / 1e6 }),
            ChartSeries(name: "p99.9", color: "#db2777", points: points { Double($0.latency.p999) / 1e6 }),
            ChartSeries(name: "max", color: "#9ca3af", points: points { Double($0.latency.max) / 1e6 }, isDashed: true),
        ]
        html += SVGChart(
            title: "Latency percentiles per second", yLabel: "ms (log)", xMax: xMax, series: latencySeries,
            isLogarithmic: true, shadedWindows: windows, marks: marks
        ).render()
        return html
    }

    static func latencyTable(_ recorder: PhaseRecorder) -> String {
        var html = "<table><tr><th>latency (ms)</th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th>"
        html += "<th>p99.9</th><th>max</th></tr>"
        var rows = [("all", recorder.overall.summary)]
        for kind in OperationKind.allCases where recorder.byKind[kind.rawValue].count > 0 {
            rows.append((kind.name, recorder.byKind[kind.rawValue].summary))
        }
        for (name, summary) in rows {
            html += "<tr><td>\(name)</td><td>\(summary.count)</td><td>\(Format.milliseconds(summary.mean))</td>"
            for value in [summary.p50, summary.p90, summary.p99, summary.p999, summary.max] {
                html += "<td>\(Format.milliseconds(value))</td>"
            }
            html += "</tr>"
        }
        html += "</table>"
        let errors = recorder.errorsByKind.sorted { $0.key < $1.key }
        if !errors.isEmpty {
            html +=
                "<p class=\"bad\">Errors by kind: "
                + errors.map { "\(SVGChart.escape($0.key)) \($0.value)" }.joined(separator: ", ") + "</p>"
        }
        return html
    }
}
