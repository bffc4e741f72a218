import CairnCore

/// The members of a group, as of one configuration entry or snapshot (thesis §4).
///
/// `voters` elect leaders and count for commitment. `learners` receive the log but never count (thesis
/// §4.2.1 catch-up, and read replicas). When `outgoingVoters` is not empty the group is in *joint
/// consensus* (thesis §4.3): every decision needs a majority of `voters` **and** a majority of
/// `outgoingVoters`. All lists are sorted and free of duplicates, so equal configurations compare equal
/// and render identically.
public struct ConfigurationState: Sendable, Equatable, CustomStringConvertible {
    public private(set) var voters: [NodeID]
    public private(set) var learners: [NodeID]
    public private(set) var outgoingVoters: [NodeID]

    /// - Precondition: a node is either a voter or a learner, not both.
    public init(voters: [NodeID], learners: [NodeID] = [], outgoingVoters: [NodeID] = []) {
        self.voters = Array(Set(voters)).sorted()
        self.learners = Array(Set(learners)).sorted()
        self.outgoingVoters = Array(Set(outgoingVoters)).sorted()
        precondition(
            Set(self.voters).isDisjoint(with: self.learners),
            "a node is a voter or a learner, not both: voters \(self.voters), learners \(self.learners)")
    }

    /// The configuration of a node that knows nothing yet (a new member waiting for its leader).
    public static let empty = ConfigurationState(voters: [])

    /// Whether this is a joint configuration C(old,new).
    public var isJoint: Bool { !outgoingVoters.isEmpty }

    /// Everyone the leader replicates to: voters, outgoing voters and learners, sorted.
    public var members: [NodeID] { Array(Set(voters + outgoingVoters + learners)).sorted() }

    /// Voters of either half of a joint configuration, sorted.
    public var allVoters: [NodeID] { Array(Set(voters + outgoingVoters)).sorted() }

    var memberCount: Int { voters.count + learners.count + outgoingVoters.count }

    /// Whether `node` may vote and stand for election in this configuration.
    public func isVoter(_ node: NodeID) -> Bool { voters.contains(node) || outgoingVoters.contains(node) }

    /// Whether `node` is the only voter (in both halves, if joint): its own vote is a quorum.
    public func isOnlyVoter(_ node: NodeID) -> Bool {
        voters.count == 1 && voters[0] == node
            && (outgoingVoters.isEmpty || (outgoingVoters.count == 1 && outgoingVoters[0] == node))
    }

    /// Whether `node` is any kind of member.
    public func isMember(_ node: NodeID) -> Bool { isVoter(node) || learners.contains(node) }

    /// Whether the nodes in `granted` form a quorum: a majority of `voters`, and in joint consensus also a
    /// majority of `outgoingVoters` (thesis §4.3).
    func isQuorum(_ granted: Set<NodeID>) -> Bool {
        Self.isMajority(of: voters, granted) && (outgoingVoters.isEmpty || Self.isMajority(of: outgoingVoters, granted))
    }

    /// Whether the nodes in `rejected` make a quorum impossible: too few voters remain in either half.
    func isQuorumImpossible(_ rejected: Set<NodeID>) -> Bool {
        Self.isMajorityImpossible(of: voters, rejected)
            || (!outgoingVoters.isEmpty && Self.isMajorityImpossible(of: outgoingVoters, rejected))
    }

    /// The largest value that a quorum has reached, given each voter's value: the commit rule of Raft
    /// §5.3 generalized to joint consensus (the smaller of the two halves' answers). `value` gives each
    /// voter's value (zero for one with nothing known). A closure rather than a dictionary, and no arrays:
    /// a leader computes this on every append response, and building them showed up in perf.
    func quorumValue(_ value: (NodeID) -> UInt64) -> UInt64 {
        let incoming = Self.majorityValue(of: voters, value)
        guard !outgoingVoters.isEmpty else { return incoming }
        return min(incoming, Self.majorityValue(of: outgoingVoters, value))
    }

    static func isMajority(of group: [NodeID], _ nodes: Set<NodeID>) -> Bool {
        group.filter(nodes.contains).count > group.count / 2
    }

    static func isMajorityImpossible(of group: [NodeID], _ rejected: Set<NodeID>) -> Bool {
        group.count - group.filter(rejected.contains).count < group.count / 2 + 1
    }

    /// The largest value reached by a majority: sort descending and take the element at position n/2.
    /// An empty group has no majority to wait for, so it reaches everything (`UInt64.max`); this only
    /// happens for the unused half of a non-joint configuration, never for `voters` of a working group.
    static func majorityValue(of group: [NodeID], _ value: (NodeID) -> UInt64) -> UInt64 {
        guard !group.isEmpty else { return UInt64.max }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: group.count) { buffer in
            var values = buffer
            for (position, node) in group.enumerated() { values.initializeElement(at: position, to: value(node)) }
            values.sort(by: >)
            return values[group.count / 2]
        }
    }

    public var description: String {
        var text = "voters=" + Render.nodes(voters)
        if !learners.isEmpty { text += " learners=" + Render.nodes(learners) }
        if !outgoingVoters.isEmpty { text += " outgoing=" + Render.nodes(outgoingVoters) }
        return text
    }
}
