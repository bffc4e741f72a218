import Foundation

/// File listing for the architecture checks (tests may use Foundation; product pure modules may not).
enum SourceFiles {
    static func list(in directory: String) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        return names.filter { $0.hasSuffix(".swift") }.sorted().map { directory + "/" + $0 }
    }

    static func directories(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    static func lines(of file: String) throws -> [String] {
        try String(contentsOfFile: file, encoding: .utf8).components(separatedBy: "\n")
    }
}

extension String {
    func trimmingPrefixWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" })
    }
}
