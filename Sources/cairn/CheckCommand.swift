import CairnCheck
import CairnCore
import Glibc

/// `cairn check history FILE`: runs the linearizability checker on a client history recorded by a
/// test or a tool against real processes (the simulators check their own histories in memory).
enum CheckCommand {
    static let help = """
        Usage: cairn check history FILE

        Checks a recorded client history for linearizability, key by key (CairnCheck, the checker
        the simulators use). Exit status: 0 linearizable, 1 not linearizable, 2 bad input or
        inconclusive (a key with too many operations or states to search).

        FILE holds one operation per line (blank lines and lines starting with # are skipped):

          CLIENT INVOKED RESPONDED OUTCOME OP KEY [ARGS...]

          CLIENT     a client number; its operations must not overlap in time
          INVOKED    when the request was sent, in microseconds on one clock
          RESPONDED  when the reply arrived (same clock), or - if none did
          OUTCOME    ok (the reply arrived), failed (it says the operation did not take effect) or
                     unknown (no reply, or an error that leaves the outcome open: it may have taken
                     effect at any time after INVOKED, or never)
          OP KEY ... get KEY OBSERVED        OBSERVED: the value read, or nil for an absent key
                     set KEY VALUE
                     cas KEY EXPECTED NEW 1|0   SET KEY NEW IFEQ EXPECTED (EXPECTED nil: SET NX);
                                            1 if it replied OK, 0 if it replied nil
                     del KEY
          Keys and values are hex-encoded bytes (an empty value is the single character =).

        """

    static func run(_ arguments: [String]) -> Int32 {
        if arguments.isEmpty || arguments.contains("-h") || arguments.contains("--help") {
            print(help, terminator: "")
            return arguments.isEmpty ? 2 : 0
        }
        guard arguments.count == 2, arguments[0] == "history" else {
            CairnCommand.fail("check: expected 'history FILE' (see 'cairn check --help')")
        }
        guard let text = readFile(arguments[1]) else {
            CairnCommand.fail("check: cannot read '\(arguments[1])': \(String(cString: strerror(errno)))")
        }
        let history: [RegisterOperation]
        switch parse(text) {
        case .failure(let message): CairnCommand.fail("check: \(arguments[1]): \(message)")
        case .success(let operations): history = operations
        }
        let report: LinearizabilityReport
        do {
            report = try LinearizabilityChecker().check(history)
        } catch {
            CairnCommand.fail("check: \(arguments[1]): \(error)")
        }
        print(report)
        switch report.verdict {
        case .linearizable: return 0
        case .notLinearizable: return 1
        case .inconclusive: return 2
        }
    }

    enum Parsed {
        case success([RegisterOperation])
        case failure(String)
    }

    /// Parses a history file; the first bad line is named with what was expected.
    static func parse(_ text: String) -> Parsed {
        var operations: [RegisterOperation] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = line.split(separator: " ").map(String.init)
            guard let first = words.first, !first.hasPrefix("#") else { continue }
            switch parseLine(words) {
            case .success(let operation): operations.append(operation)
            case .failure(let message): return .failure("line \(number + 1): \(message)")
            }
        }
        return .success(operations)
    }

    enum ParsedLine {
        case success(RegisterOperation)
        case failure(String)
    }

    static func parseLine(_ words: [String]) -> ParsedLine {
        guard words.count >= 6 else {
            return .failure("expected CLIENT INVOKED RESPONDED OUTCOME OP KEY [ARGS], got \(words.count) fields")
        }
        guard let client = UInt64(words[0]) else { return .failure("CLIENT '\(words[0])' is not a number") }
        guard let invoked = UInt64(words[1]) else { return .failure("INVOKED '\(words[1])' is not a number") }
        let responded: UInt64?
        if words[2] == "-" {
            responded = nil
        } else {
            guard let time = UInt64(words[2]) else { return .failure("RESPONDED '\(words[2])' is not a number or -") }
            responded = time
        }
        let outcome: RegisterOperation.Outcome
        switch (words[3], responded) {
        case ("ok", let time?): outcome = .ok(at: Timestamp(ticks: time))
        case ("failed", let time?): outcome = .failed(at: Timestamp(ticks: time))
        case ("unknown", _): outcome = .unknown
        case ("ok", nil), ("failed", nil): return .failure("OUTCOME \(words[3]) needs a RESPONDED time")
        default: return .failure("OUTCOME '\(words[3])' is not ok, failed or unknown")
        }
        guard let key = hex(words[5]) else { return .failure("KEY '\(words[5])' is not hex") }
        let arguments = Array(words[6...])
        let kind: RegisterOperation.Kind
        switch (words[4], arguments.count) {
        case ("get", 1):
            guard let observed = optionalValue(arguments[0]) else { return .failure("OBSERVED is not hex or nil") }
            kind = .read(observed: observed)
        case ("set", 1):
            guard let value = hex(arguments[0]) else { return .failure("VALUE is not hex") }
            kind = .write(RegisterValue(value))
        case ("cas", 3):
            guard let expected = optionalValue(arguments[0]), let new = hex(arguments[1]),
                arguments[2] == "1" || arguments[2] == "0"
            else { return .failure("expected cas KEY EXPECTED NEW 1|0 (hex or nil, hex, 1 or 0)") }
            kind = .compareAndSet(expected: expected, new: RegisterValue(new), succeeded: arguments[2] == "1")
        case ("del", 0):
            kind = .delete
        default:
            return .failure(
                "OP '\(words[4])' with \(arguments.count) arguments; expected get KEY OBSERVED, set KEY VALUE, "
                    + "cas KEY EXPECTED NEW 1|0 or del KEY")
        }
        return .success(
            RegisterOperation(
                client: ClientID(client), key: RegisterKey(key), kind: kind, invocation: Timestamp(ticks: invoked),
                outcome: outcome))
    }

    /// `nil` → absent (`.some(nil)`), hex → a value, anything else → nil (bad input).
    static func optionalValue(_ word: String) -> RegisterValue?? {
        if word == "nil" { return .some(nil) }
        return hex(word).map { .some(RegisterValue($0)) }
    }

    static func hex(_ word: String) -> [UInt8]? {
        if word == "=" { return [] }
        let digits = Array(word.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 0x30...0x39: digit - 0x30
        case 0x61...0x66: digit - 0x61 + 10
        case 0x41...0x46: digit - 0x41 + 10
        default: nil
        }
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
            if count < buffer.count { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
