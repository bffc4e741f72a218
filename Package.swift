// swift-tools-version: 6.0
import PackageDescription

/// Pure modules import only the standard library and each other (see docs/architecture.md).
/// `ArchitectureTests` fails the build if one of them imports Foundation, Dispatch, Glibc, CLinux or CRocksDB.
let package = Package(
    name: "Cairn",
    products: [
        .executable(name: "cairn", targets: ["cairn"])
    ],
    targets: [
        // Pure modules.
        .target(name: "CairnCore"),
        .target(name: "CairnRESP", dependencies: ["CairnCore"]),
        .target(name: "CairnStorage", dependencies: ["CairnCore"]),
        .target(name: "CairnRaft", dependencies: ["CairnCore"]),
        .target(
            name: "CairnNode",
            dependencies: ["CairnCore", "CairnRESP", "CairnStorage", "CairnRaft", "CairnPlacement", "CairnResilience"]),
        .target(name: "CairnCheck", dependencies: ["CairnCore"]),
        .target(
            name: "CairnSim",
            dependencies: ["CairnCore", "CairnRaft", "CairnCheck", "CairnNode", "CairnStorage", "CairnRESP"]),
        .target(name: "CairnPlacement", dependencies: ["CairnCore"]),
        .target(name: "CairnResilience", dependencies: ["CairnCore"]),
        .target(name: "CairnBench", dependencies: ["CairnCore", "CairnRESP", "CairnPlacement"]),

        // C libraries from Debian.
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),

        // Shells.
        .target(name: "CairnRocks", dependencies: ["CairnCore", "CairnStorage", "CRocksDB"]),
        .target(
            name: "CairnServer",
            dependencies: [
                "CairnCore", "CairnRESP", "CairnStorage", "CairnNode", "CairnRocks", "CairnResilience", "CLinux",
            ]),
        // The load generator's hot loop mutates loop-confined class state; release builds skip the dynamic
        // exclusivity checks there (measured: they were ~8% of its CPU; see docs/bench.md).
        .target(
            name: "CairnBenchRunner",
            dependencies: ["CairnCore", "CairnRESP", "CairnBench", "CairnPlacement", "CairnResilience", "CLinux"],
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]),
        .executableTarget(
            name: "cairn",
            dependencies: ["CairnCore", "CairnServer", "CairnSim", "CairnCheck", "CairnBench", "CairnBenchRunner"]),

        // Tests.
        .testTarget(name: "CairnCoreTests", dependencies: ["CairnCore"]),
        .testTarget(name: "CairnRESPTests", dependencies: ["CairnRESP"]),
        .testTarget(name: "CairnStorageTests", dependencies: ["CairnStorage"]),
        .testTarget(name: "CairnRaftTests", dependencies: ["CairnRaft", "CairnCore"], exclude: ["Golden"]),
        .testTarget(name: "CairnRocksTests", dependencies: ["CairnRocks", "CairnStorage", "CairnNode", "CairnRaft"]),
        .testTarget(name: "CairnSimTests", dependencies: ["CairnSim", "CairnRaft", "CairnCore"]),
        .testTarget(name: "CairnNodeTests", dependencies: ["CairnNode", "CairnStorage", "CairnRESP"]),
        .testTarget(name: "CairnCheckTests", dependencies: ["CairnCheck", "CairnCore"]),
        .testTarget(name: "CairnPlacementTests", dependencies: ["CairnPlacement", "CairnCore"]),
        .testTarget(name: "CairnBenchTests", dependencies: ["CairnBench", "CairnCore", "CairnRESP", "CairnPlacement"]),
        .testTarget(name: "CairnResilienceTests", dependencies: ["CairnResilience", "CairnCore"]),
        .testTarget(name: "ArchitectureTests"),
    ],
    swiftLanguageModes: [.v6]
)
