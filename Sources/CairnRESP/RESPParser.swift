import CairnCore

/// The result of trying to parse one command from the front of a buffer.
public enum ParseStep: Equatable, Sendable {
    /// A whole command: its arguments, and how many bytes it used. An empty argument list means the
    /// input was a no-op (an empty inline line or `*0`) that the caller skips.
    case command([[UInt8]], consumed: Int)
    /// The buffer holds only part of a command; read more and try again from the same offset.
    case needMoreBytes
    /// The bytes can never become a valid command; reply with the error and close the connection.
    case invalid(RESPError)
}

/// An incremental parser of client commands: RESP multibulk arrays of bulk strings, and inline
/// commands (a line of space-separated words, as typed into telnet), exactly as Redis accepts them.
///
/// It is stateless: it parses from an offset and tells how many bytes a command used, so the caller
/// keeps one buffer per connection and drops consumed bytes in bulk. A partial command costs a re-scan
/// of its headers only (not its data) when more bytes arrive, because each bulk's length is known
/// before its data is looked at. Limits come from `Limits` and are checked before memory is used.
public enum RESPParser {
    static let carriageReturn = UInt8(ascii: "\r")
    static let lineFeed = UInt8(ascii: "\n")

    /// Parses one command starting at `start`.
    public static func parse(_ buffer: [UInt8], from start: Int = 0) -> ParseStep {
        precondition(start >= 0 && start <= buffer.count, "parse offset \(start) outside buffer of \(buffer.count)")
        guard start < buffer.count else { return .needMoreBytes }
        return buffer.withUnsafeBufferPointer { bytes in
            if bytes[start] == UInt8(ascii: "*") {
                return parseMultibulk(bytes, start)
            }
            return parseInline(bytes, start)
        }
    }

    /// Finds the CR of the CRLF that ends the line starting at `start`, looking at most `limit` bytes.
    /// Returns nil when the buffer ends first; `.max` when `limit` bytes hold no line end.
    static func lineEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, limit: Int) -> Int? {
        var index = start
        let end = min(bytes.count, start + limit + 1)
        while index < end {
            if bytes[index] == carriageReturn {
                if index + 1 >= bytes.count { return nil }
                return index
            }
            index += 1
        }
        return end == bytes.count ? nil : .max
    }

    /// Reads a decimal header integer from `bytes[from..<to]`.
    static func headerInteger(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int64? {
        Numbers.parseInt64(UnsafeBufferPointer(rebasing: bytes[from..<to]))
    }

    static func parseMultibulk(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> ParseStep {
        guard let headerEnd = lineEnd(bytes, start + 1, limit: Limits.respHeaderBytesMax) else {
            return .needMoreBytes
        }
        guard headerEnd != .max else { return .invalid(.multibulkHeaderTooLong(limit: Limits.respHeaderBytesMax)) }
        guard let count = headerInteger(bytes, start + 1, headerEnd), count <= Limits.respArgumentsMax else {
            let found = RESPError.printable(UnsafeBufferPointer(rebasing: bytes[(start + 1)..<headerEnd]))
            return .invalid(.invalidMultibulkLength(found: found, limit: Limits.respArgumentsMax))
        }
        guard bytes[headerEnd + 1] == lineFeed else {
            return .invalid(.invalidMultibulkLength(found: "\\r", limit: Limits.respArgumentsMax))
        }
        var index = headerEnd + 2
        guard count > 0 else { return .command([], consumed: index - start) }
        // First pass: check that every bulk is complete, without copying anything (a large command
        // arriving in many reads is not copied again on each) or storing anything (an array of the
        // spans was one of a SET's five parsing allocations). The second pass walks the checked
        // headers again and copies the arguments.
        let first = index
        for _ in 0..<count {
            guard index < bytes.count else { return .needMoreBytes }
            guard bytes[index] == UInt8(ascii: "$") else { return .invalid(.expectedBulk(found: bytes[index])) }
            guard let lengthEnd = lineEnd(bytes, index + 1, limit: Limits.respHeaderBytesMax) else {
                return .needMoreBytes
            }
            guard lengthEnd != .max else { return .invalid(.bulkHeaderTooLong(limit: Limits.respHeaderBytesMax)) }
            guard let length = headerInteger(bytes, index + 1, lengthEnd), length >= 0,
                length <= Limits.respBulkBytesMax, bytes[lengthEnd + 1] == lineFeed
            else {
                let found = RESPError.printable(UnsafeBufferPointer(rebasing: bytes[(index + 1)..<lengthEnd]))
                return .invalid(.invalidBulkLength(found: found, limit: Limits.respBulkBytesMax))
            }
            let dataEnd = lengthEnd + 2 + Int(length)
            guard dataEnd + 2 <= bytes.count else { return .needMoreBytes }
            guard bytes[dataEnd] == carriageReturn, bytes[dataEnd + 1] == lineFeed else {
                return .invalid(.missingBulkTerminator)
            }
            index = dataEnd + 2
        }
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(Int(count))
        var position = first
        for _ in 0..<count {
            // Checked above: "$", a valid length, CRLF, the data, CRLF.
            let lengthEnd = lineEnd(bytes, position + 1, limit: Limits.respHeaderBytesMax)!
            let dataStart = lengthEnd + 2
            let dataEnd = dataStart + Int(headerInteger(bytes, position + 1, lengthEnd)!)
            arguments.append(Array(bytes[dataStart..<dataEnd]))
            position = dataEnd + 2
        }
        return .command(arguments, consumed: index - start)
    }

    static func parseInline(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> ParseStep {
        var newline = start
        while newline < bytes.count, bytes[newline] != lineFeed {
            newline += 1
        }
        guard newline < bytes.count else {
            if bytes.count - start > Limits.respInlineBytesMax {
                return .invalid(.inlineTooLong(limit: Limits.respInlineBytesMax))
            }
            return .needMoreBytes
        }
        if newline - start > Limits.respInlineBytesMax {
            return .invalid(.inlineTooLong(limit: Limits.respInlineBytesMax))
        }
        var lineEnd = newline
        if lineEnd > start, bytes[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
        guard let words = splitInline(UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])) else {
            return .invalid(.unbalancedQuotes)
        }
        return .command(words, consumed: newline + 1 - start)
    }

    /// Splits an inline line into words as Redis's `sdssplitargs` does: spaces separate, double quotes
    /// allow escapes (`\n`, `\xHH`, ...), single quotes are literal except `\'`. Nil when quotes do
    /// not balance or a closing quote is not followed by a space.
    static func splitInline(_ line: UnsafeBufferPointer<UInt8>) -> [[UInt8]]? {
        var words: [[UInt8]] = []
        var index = 0
        func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
        }
        while true {
            while index < line.count, isSpace(line[index]) { index += 1 }
            guard index < line.count else { return words }
            var word: [UInt8] = []
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                if inDouble {
                    guard index < line.count else { return nil }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\"), index + 3 < line.count, line[index + 1] == UInt8(ascii: "x"),
                        let high = Numbers.hexDigitValue(line[index + 2]),
                        let low = Numbers.hexDigitValue(line[index + 3])
                    {
                        word.append(high << 4 | low)
                        index += 3
                    } else if byte == UInt8(ascii: "\\"), index + 1 < line.count {
                        index += 1
                        switch line[index] {
                        case UInt8(ascii: "n"): word.append(0x0A)
                        case UInt8(ascii: "r"): word.append(0x0D)
                        case UInt8(ascii: "t"): word.append(0x09)
                        case UInt8(ascii: "b"): word.append(0x08)
                        case UInt8(ascii: "a"): word.append(0x07)
                        default: word.append(line[index])
                        }
                    } else if byte == UInt8(ascii: "\"") {
                        if index + 1 < line.count, !isSpace(line[index + 1]) { return nil }
                        done = true
                    } else {
                        word.append(byte)
                    }
                } else if inSingle {
                    guard index < line.count else { return nil }
                    let byte = line[index]
                    if byte == UInt8(ascii: "\\"), index + 1 < line.count, line[index + 1] == UInt8(ascii: "'") {
                        index += 1
                        word.append(UInt8(ascii: "'"))
                    } else if byte == UInt8(ascii: "'") {
                        if index + 1 < line.count, !isSpace(line[index + 1]) { return nil }
                        done = true
                    } else {
                        word.append(byte)
                    }
                } else {
                    guard index < line.count else { break }
                    let byte = line[index]
                    if isSpace(byte) {
                        done = true
                    } else if byte == UInt8(ascii: "\"") {
                        inDouble = true
                    } else if byte == UInt8(ascii: "'") {
                        inSingle = true
                    } else {
                        word.append(byte)
                    }
                }
                if index < line.count { index += 1 }
            }
            words.append(word)
        }
    }
}
