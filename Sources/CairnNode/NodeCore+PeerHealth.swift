import CairnCore
import CairnRESP
import CairnResilience

/// Protecting forwards from failing peers: one circuit breaker per peer, early failure of forwards to
/// a peer that went silent, and retries of what is safe to retry within a budget (docs/resilience.md).
///
/// - A forward asks the target's breaker first; an open breaker answers `-TRYAGAIN` at once instead
///   of sending into a peer that keeps failing. A reply (any reply: a `notLeader` too) is a success of
///   the link, a forward that reaches its deadline unanswered or whose peer went silent is a failure.
/// - A forward whose target has been silent for two election timeouts (the node heartbeats every 20
///   ms) does not wait for its deadline: a read, or a write with an idempotency token, is sent again
///   (to the partition's next likely leader) if the retry budget allows; any other write is answered
///   at once with its unknown outcome.
extension NodeCore {
    /// Asks `peer`'s breaker for a forward: a permit, or how long it stays open.
    mutating func breakerDecision(for peer: NodeID) -> CircuitBreaker.Decision {
        let clock = MonotonicTime(now)
        if breakers[peer] == nil { breakers[peer] = CircuitBreaker(configuration: .standard) }
        let decision = breakers[peer]!.allow(now: clock)
        if case .rejected = decision { stats.breakerRejections += 1 }
        return decision
    }

    /// Records how a forward to `peer` ended, and logs the breaker's state changes.
    mutating func recordForward(
        to peer: NodeID, permit: CircuitBreaker.Permit?, _ outcome: CircuitBreaker.Outcome,
        into output: inout NodeOutput
    ) {
        guard let permit, breakers[peer] != nil else { return }
        breakers[peer]!.record(outcome, permit: permit, now: MonotonicTime(now))
        for transition in breakers[peer]!.drainTransitions() {
            output.logs.append(
                NodeLog(
                    transition.to == .open ? .warn : .info, "circuit breaker to a peer changed state",
                    [
                        ("peer", "\(peer)"), ("from", "\(transition.from)"), ("to", "\(transition.to)"),
                        ("reason", "\(transition.reason)"),
                    ]))
        }
    }

    /// Whether a command may be sent again after its first attempt's outcome was lost: reads, and writes
    /// carrying an idempotency token (applied once however often they arrive).
    static func isSafeToRetry(_ waiter: Waiter) -> Bool {
        let spec = CommandTable.commands[waiter.command]
        return !spec.isWrite || spec.name == "idempotent"
    }

    /// Forwards whose target went silent: retried elsewhere when safe and within the budget, else
    /// answered now rather than at their deadline. Every 10 ticks.
    mutating func failForwardsToSilentPeers(into output: inout NodeOutput) {
        guard ticks % 10 == 6, !forwards.isEmpty else { return }
        let clock = MonotonicTime(now)
        let patience = UInt64(2 * config.electionTicks)
        for (id, pending) in forwards where ticks > pending.sentTick + patience && !isAlive(pending.target) {
            forwards.removeValue(forKey: id)
            recordForward(to: pending.target, permit: pending.permit, .failure, into: &output)
            suspect(pending.target, ofLeading: pending.partition)
            if leaderHints[pending.partition] == pending.target { leaderHints[pending.partition] = nil }
            if Self.isSafeToRetry(pending.waiter), retryBudget.spendRetry(now: clock) {
                stats.forwardRetries += 1
                parked.append((pending.partition, pending.waiter))
            } else {
                finish(
                    pending.waiter,
                    error:
                        "TRYAGAIN node \(pending.target), the leader of partition \(pending.partition), stopped answering; "
                        + "the outcome is unknown (a write may or may not have been applied)",
                    into: &output)
            }
        }
    }

    /// One line of this node's protective counters since it started, for `cairn ctl status`.
    func resilienceSummary() -> String {
        let slow = latencyAdmission.reduce(0) { $0 + $1.refusedCount }
        return
            "this node: \(commandsAwaitingReply) commands in flight; refused \(stats.commandsRefused) (--max-inflight), "
            + "\(slow) (--overload-latency), \(stats.commandsRateLimited) (--client-rate-limit); forwards retried "
            + "\(stats.forwardRetries) (\(retryBudget.retriesDenied) denied by the retry budget), failed fast by a circuit "
            + "\(stats.breakerRejections)"
    }

    /// One line per peer with a breaker that is not closed, for `cairn ctl status` (empty if none).
    func breakerSummary() -> String {
        let lines = breakers.keys.sorted().compactMap { peer -> String? in
            let breaker = breakers[peer]!
            let state = breaker.state
            guard state != .closed else { return nil }
            return "circuit to node \(peer): \(state) (opened \(breaker.openedCount) times)"
        }
        return lines.joined(separator: "\n")
    }
}
