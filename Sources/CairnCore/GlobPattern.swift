/// A Redis glob pattern (KEYS, SCAN MATCH): `*`, `?`, `[abc]`, `[^a-z]` and `\` escapes, over bytes.
///
/// The pattern is compiled once into tokens and matched with the classic two-pointer algorithm that
/// backtracks only to the last `*`. It never recurses, so a hostile pattern cannot overflow the stack,
/// and it runs in O(pattern × key) time at worst.
public struct GlobPattern: Sendable {
    enum Token: Sendable, Equatable {
        case byte(UInt8)
        case any
        case star
        /// A bracket class: single bytes and inclusive ranges, possibly negated.
        case set(negated: Bool, bytes: [UInt8], ranges: [ClosedRange<UInt8>])
    }

    let tokens: [Token]
    /// True when the pattern is `*`, so callers can skip matching altogether.
    public let matchesEverything: Bool

    public init(_ pattern: [UInt8]) {
        var tokens: [Token] = []
        var index = 0
        while index < pattern.count {
            let byte = pattern[index]
            switch byte {
            case UInt8(ascii: "*"):
                if tokens.last != .star { tokens.append(.star) }
                index += 1
            case UInt8(ascii: "?"):
                tokens.append(.any)
                index += 1
            case UInt8(ascii: "\\") where index + 1 < pattern.count:
                tokens.append(.byte(pattern[index + 1]))
                index += 2
            case UInt8(ascii: "["):
                index += 1
                let token = Self.compileSet(pattern, &index)
                tokens.append(token)
            default:
                tokens.append(.byte(byte))
                index += 1
            }
        }
        self.tokens = tokens
        self.matchesEverything = tokens == [.star]
    }

    /// Compiles a bracket class starting after `[`; leaves `index` after the closing `]` (or at the end,
    /// as Redis treats an unterminated class as running to the end of the pattern).
    private static func compileSet(_ pattern: [UInt8], _ index: inout Int) -> Token {
        var negated = false
        if index < pattern.count, pattern[index] == UInt8(ascii: "^") {
            negated = true
            index += 1
        }
        var bytes: [UInt8] = []
        var ranges: [ClosedRange<UInt8>] = []
        while index < pattern.count, pattern[index] != UInt8(ascii: "]") {
            if pattern[index] == UInt8(ascii: "\\"), index + 1 < pattern.count {
                bytes.append(pattern[index + 1])
                index += 2
            } else if index + 2 < pattern.count, pattern[index + 1] == UInt8(ascii: "-"),
                pattern[index + 2] != UInt8(ascii: "]")
            {
                let low = min(pattern[index], pattern[index + 2])
                let high = max(pattern[index], pattern[index + 2])
                ranges.append(low...high)
                index += 3
            } else {
                bytes.append(pattern[index])
                index += 1
            }
        }
        if index < pattern.count { index += 1 }  // The closing bracket.
        return .set(negated: negated, bytes: bytes, ranges: ranges)
    }

    private static func matches(_ token: Token, _ byte: UInt8) -> Bool {
        switch token {
        case .byte(let expected): return byte == expected
        case .any: return true
        case .star: return true
        case .set(let negated, let bytes, let ranges):
            let inside = bytes.contains(byte) || ranges.contains { $0.contains(byte) }
            return inside != negated
        }
    }

    /// Whether `key` matches the whole pattern.
    public func matches<Bytes: Collection>(_ key: Bytes) -> Bool where Bytes.Element == UInt8, Bytes.Index == Int {
        if matchesEverything { return true }
        var tokenIndex = 0
        var keyIndex = key.startIndex
        var starToken = -1
        var starKey = key.startIndex
        while keyIndex < key.endIndex {
            if tokenIndex < tokens.count, tokens[tokenIndex] == .star {
                starToken = tokenIndex
                starKey = keyIndex
                tokenIndex += 1
            } else if tokenIndex < tokens.count, Self.matches(tokens[tokenIndex], key[keyIndex]) {
                tokenIndex += 1
                keyIndex += 1
            } else if starToken >= 0 {
                tokenIndex = starToken + 1
                starKey += 1
                keyIndex = starKey
            } else {
                return false
            }
        }
        while tokenIndex < tokens.count, tokens[tokenIndex] == .star { tokenIndex += 1 }
        return tokenIndex == tokens.count
    }
}
