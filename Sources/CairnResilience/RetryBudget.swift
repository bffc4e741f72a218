/// A retry budget: retries may be at most a fixed fraction of requests, plus a small floor per second.
///
/// Why: retries multiply load exactly when a backend can least take it. A client that tries each
/// request three times sends up to 3× the traffic to a failing backend, and layers that each retry
/// multiply their factors. The Google SRE book, ch. 21 "Handling Overload" (section "Deciding to
/// Retry"), caps attempts per request and adds a *per-client* budget: a client tracks the ratio of
/// its requests that are retries and retries only while that ratio is below 10%. Ch. 22
/// "Addressing Cascading Failures" explains the storms this prevents. Finagle's `RetryBudget` and
/// gRPC's retry throttling (gRFC A6) implement the budget as a token bucket, and so does this type:
/// - every first attempt deposits `retryRatio` tokens (0.1 by default), up to `depositedTokensMax`;
/// - every retry withdraws one whole token, and is refused when there is none.
///
/// So over a long run, retries ≤ `retryRatio` × requests (plus the floor below, plus whatever was
/// banked). When a backend fails completely, clients add at most 10% extra load instead of 2× or 3×.
///
/// **The floor.** A client that sends one request a minute would, by ratio alone, get one retry every
/// ten minutes, so a single transient error would reach the user. As in Finagle (`minRetriesPerSec`),
/// a separate allowance of `minimumRetriesPerSecond` refills with time (a `RateLimiter` whose burst is
/// one second's worth). Retries draw from the allowance first, because it refills whether used or not;
/// deposits are kept for bursts of failures. The floor is small and absolute, so it cannot amplify a
/// high-traffic client's load by more than a constant.
///
/// Deviation from Finagle: deposits do not expire after a time-to-live; they are capped instead
/// (`depositedTokensMax`), as in gRPC's throttling. That keeps the state to two integers and bounds
/// the largest burst of retries a long quiet success streak can bank.
///
/// Tokens are counted in nano-tokens, so ten deposits of 0.1 make exactly one token (with `Double`,
/// they make 0.9999999999999999 and the tenth request would not earn its retry).
///
/// The shell MUST call `recordRequest` once per first attempt (never for a retry: retries earning
/// retries would defeat the budget) and `spendRetry` before each retry, retrying only if it returns true.
public struct RetryBudget: Sendable, Equatable {
    /// The budget's parameters. Checked by `init`; they come from code or validated flags.
    public struct Configuration: Sendable, Equatable {
        /// Tokens each first attempt deposits: the long-run ceiling of retries ÷ requests.
        public var retryRatio: Double
        /// The most deposited tokens kept, so the largest burst of retries after a quiet period.
        public var depositedTokensMax: UInt64
        /// Retries allowed per second regardless of traffic; 0 turns the floor off.
        public var minimumRetriesPerSecond: UInt64

        /// Parameters as given; `RetryBudget.init` checks them.
        public init(retryRatio: Double, depositedTokensMax: UInt64, minimumRetriesPerSecond: UInt64) {
            self.retryRatio = retryRatio
            self.depositedTokensMax = depositedTokensMax
            self.minimumRetriesPerSecond = minimumRetriesPerSecond
        }

        /// 10% of requests (the SRE book's figure), at most 100 banked retries, and a floor of 10 per
        /// second (Finagle's default floor) so that a quiet client still retries a transient error.
        public static let standard = Configuration(
            retryRatio: 0.1, depositedTokensMax: 100, minimumRetriesPerSecond: 10)
    }

    /// The parameters in use.
    public let configuration: Configuration
    /// Nano-tokens one request deposits.
    private let depositUnits: UInt64
    /// Deposited nano-tokens, at most `depositedTokensMax` tokens.
    private var depositedUnits: UInt64 = 0
    /// The per-second floor, or nil when it is off.
    private var allowance: RateLimiter?
    /// First attempts recorded.
    public private(set) var requestsRecorded: UInt64 = 0
    /// Retries the budget allowed.
    public private(set) var retriesSpent: UInt64 = 0
    /// Retries the budget refused.
    public private(set) var retriesDenied: UInt64 = 0

    /// A budget with no deposits yet and a full per-second allowance.
    /// - Precondition: `0 <= retryRatio <= 1`, `depositedTokensMax >= 1`, and the floor within `RateLimiter`'s limits.
    public init(configuration: Configuration = .standard, now: MonotonicTime) {
        let ratio = configuration.retryRatio
        precondition(ratio >= 0 && ratio <= 1, "RetryBudget retryRatio must be within 0...1, got \(ratio)")
        precondition(configuration.depositedTokensMax >= 1, "RetryBudget depositedTokensMax must be at least 1")
        precondition(
            configuration.depositedTokensMax <= RateLimiter.burstMax,
            "RetryBudget depositedTokensMax (\(configuration.depositedTokensMax)) exceeds \(RateLimiter.burstMax)")
        self.configuration = configuration
        self.depositUnits = UInt64((ratio * Double(RateLimiter.unitsPerToken)).rounded())
        let floor = configuration.minimumRetriesPerSecond
        self.allowance = floor == 0 ? nil : RateLimiter(tokensPerSecond: floor, burst: floor, now: now)
    }

    /// Records one first attempt (not a retry), depositing `retryRatio` tokens.
    public mutating func recordRequest(now: MonotonicTime) {
        requestsRecorded += 1
        let capacity = configuration.depositedTokensMax * RateLimiter.unitsPerToken
        depositedUnits = Swift.min(capacity, depositedUnits + depositUnits)
    }

    /// Whether a retry at `now` would be allowed, without spending anything.
    public func canRetry(now: MonotonicTime) -> Bool {
        if depositedUnits >= RateLimiter.unitsPerToken { return true }
        return (allowance?.availableTokens(now: now) ?? 0) >= 1
    }

    /// Spends one retry if the budget allows it at `now`. Retry only when this returns true.
    public mutating func spendRetry(now: MonotonicTime) -> Bool {
        if var floor = allowance {
            let acquisition = floor.tryAcquire(now: now)
            allowance = floor
            if acquisition == .acquired {
                retriesSpent += 1
                return true
            }
        }
        if depositedUnits >= RateLimiter.unitsPerToken {
            depositedUnits -= RateLimiter.unitsPerToken
            retriesSpent += 1
            return true
        }
        retriesDenied += 1
        return false
    }

    /// Deposited retries available now, in whole tokens (the floor not included); for metrics.
    public var depositedTokens: UInt64 { depositedUnits / RateLimiter.unitsPerToken }
}
