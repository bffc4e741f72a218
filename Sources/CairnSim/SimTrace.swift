/// The simulator's readable log of one run, and a hash of it that two runs of one seed must share.
///
/// Lines are built only when recording (callers pass an autoclosure), so a run without `--trace` pays
/// nothing for them. The hash is 64-bit FNV-1a over every line and its newline, computed byte by byte
/// so it never depends on Swift's per-process `Hasher` seed (STYLE.md §2.7).
public struct SimTrace: Sendable {
    /// Lines kept in memory at most; older ones are dropped (the hash still covers them).
    public static let linesMax = 2_000_000

    public private(set) var isRecording: Bool
    public private(set) var lines: [String] = []
    public private(set) var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    public private(set) var lineCount = 0
    /// Called with each line as it is recorded (the CLI streams the trace instead of keeping it).
    var sink: (@Sendable (String) -> Void)?
    var keepsLines: Bool

    init(isRecording: Bool, keepsLines: Bool = true) {
        self.isRecording = isRecording
        self.keepsLines = keepsLines
    }

    /// Records one line stamped with the simulated time.
    mutating func record(_ timeMs: UInt64, _ line: @autoclosure () -> String) {
        guard isRecording else { return }
        let text = Self.stamp(timeMs) + " " + line()
        for byte in text.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        hash = (hash ^ 0x0A) &* 0x0000_0100_0000_01B3
        lineCount += 1
        sink?(text)
        if keepsLines && lines.count < Self.linesMax { lines.append(text) }
    }

    /// The last `count` lines kept.
    public func tail(_ count: Int) -> [String] { Array(lines.suffix(count)) }

    /// `  12.340s`: seconds with milliseconds, right-aligned so the trace reads as a column.
    static func stamp(_ timeMs: UInt64) -> String {
        let seconds = String(timeMs / 1000)
        let millis = String(timeMs % 1000)
        let text = seconds + "." + String(repeating: "0", count: 3 - millis.count) + millis + "s"
        return text.count >= 9 ? text : String(repeating: " ", count: 9 - text.count) + text
    }
}
