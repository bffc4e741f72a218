/// The few elementary functions the generators need, in plain Swift: pure modules may not import
/// Glibc, and the standard library has no `log` or `exp`. Accurate to a few units in the last place
/// over the ranges used here, which is far more than a key distribution needs.
enum BenchMath {
    static let ln2 = 0.693_147_180_559_945_309_417_232_121_458

    /// The natural logarithm of a positive finite `x`.
    static func log(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite, "log of \(x)")
        // x = m × 2^e with m in [√½, √2), then log(m) = 2 atanh(s) with s = (m-1)/(m+1), |s| < 0.172.
        var exponent = Double(Int(x.exponent))
        var mantissa = x.significand
        if mantissa > 1.414_213_562_373_095 {
            mantissa /= 2
            exponent += 1
        }
        let s = (mantissa - 1) / (mantissa + 1)
        let s2 = s * s
        var term = s
        var sum = 0.0
        var odd = 1.0
        while true {
            let next = sum + term / odd
            if next == sum { break }
            sum = next
            term *= s2
            odd += 2
        }
        return 2 * sum + exponent * ln2
    }

    /// e raised to `x`; 0 below about -745 and infinity above about 709.
    static func exp(_ x: Double) -> Double {
        if x < -745 { return 0 }
        if x > 709.7 { return .infinity }
        let k = (x / ln2).rounded()
        let r = x - k * ln2
        var term = 1.0
        var sum = 1.0
        var n = 1.0
        while true {
            term *= r / n
            let next = sum + term
            if next == sum { break }
            sum = next
            n += 1
        }
        return sum * Self.powerOfTwo(Int(k))
    }

    /// `base` raised to `power`, for a positive base.
    static func pow(_ base: Double, _ power: Double) -> Double {
        precondition(base >= 0, "pow of negative base \(base)")
        if base == 0 { return power == 0 ? 1 : 0 }
        return exp(power * log(base))
    }

    static func powerOfTwo(_ k: Int) -> Double {
        if k < -1074 { return 0 }
        if k > 1023 { return .infinity }
        if k < -1022 {
            return Double(sign: .plus, exponent: -1022, significand: 1)
                * Double(sign: .plus, exponent: k + 1022, significand: 1)
        }
        return Double(sign: .plus, exponent: k, significand: 1)
    }
}
