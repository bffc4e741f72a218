import Testing

/// The spirit of TigerBeetle's `tidy.zig`: the layering in docs/architecture.md is checked, not hoped for.
@Suite("architecture")
struct PureModuleImportsTests {
    static let pureModules = [
        "CairnCore", "CairnRESP", "CairnStorage", "CairnNode", "CairnRaft", "CairnCheck", "CairnSim",
        "CairnPlacement",
        "CairnBench",
        "CairnResilience",
    ]
    static let forbidden = [
        "Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Musl", "CLinux", "CRocksDB", "Synchronization",
    ]

    static var sourcesDirectory: String {
        let file = #filePath
        let testsRange = file.range(of: "/Tests/")!
        return String(file[..<testsRange.lowerBound]) + "/Sources"
    }

    @Test("pure modules import only the standard library and each other", arguments: pureModules)
    func pureModuleHasNoForbiddenImports(module: String) throws {
        let files = try SourceFiles.list(in: Self.sourcesDirectory + "/" + module)
        #expect(!files.isEmpty, "no Swift files found for \(module)")
        for file in files {
            for (number, line) in try SourceFiles.lines(of: file).enumerated() {
                let trimmed = line.trimmingPrefixWhitespace()
                guard trimmed.hasPrefix("import ") || trimmed.hasPrefix("@_exported import ") else { continue }
                let imported = trimmed.split(separator: " ").last.map(String.init) ?? ""
                #expect(!Self.forbidden.contains(imported), "\(file):\(number + 1) imports \(imported)")
            }
        }
    }

    @Test("only CairnRocks imports CRocksDB")
    func onlyRocksImportsRocksDB() throws {
        for module in try SourceFiles.directories(in: Self.sourcesDirectory) where module != "CairnRocks" {
            for file in try SourceFiles.list(in: Self.sourcesDirectory + "/" + module) {
                let imports = try SourceFiles.lines(of: file).contains {
                    $0.trimmingPrefixWhitespace() == "import CRocksDB"
                }
                #expect(!imports, "\(file) imports CRocksDB; only CairnRocks may")
            }
        }
    }

    @Test("the check itself can fail: a forbidden import is detected")
    func detectorFindsForbiddenImport() {
        let line = "import Foundation"
        let imported = line.split(separator: " ").last.map(String.init) ?? ""
        #expect(Self.forbidden.contains(imported))
    }
}
