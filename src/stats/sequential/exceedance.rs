//! Sequential two-sample exceedance test: is the canary more likely than the baseline to
//! be slower than a threshold? The latency test runs one per watched quantile, with the
//! threshold at the baseline's quantile from the previous looks.
//!
//! Model. At look `t` a threshold `tau_t` is fixed from earlier looks only (predictable).
//! Of the `n_c` canary and `n_b` baseline observations of the look, `X_c` and `X_b` lie
//! above it: independent `Binomial(n_c, p_c)` and `Binomial(n_b, p_b)`. Given their sum
//! `A = X_c + X_b`, `X_c` follows Fisher's noncentral hypergeometric law with odds ratio
//! `omega = p_c (1 - p_b) / (p_b (1 - p_c))`: `P(X_c = k | A) = h(k) omega^k / sum_j h(j)
//! omega^j`, `h(k) = C(n_c, k) C(n_b, A - k)`. The null "canary no slower" (`p_c <= p_b`
//! at every threshold, which a canary stochastically no slower than the baseline
//! satisfies) is `omega <= 1` at every look.
//!
//! E-process. For a fixed `omega > 1` the look's likelihood ratio against `omega = 1` is
//! `LR(omega) = omega^{X_c} / E_1[omega^K]` (K central hypergeometric). Its mean under
//! `omega = 1` is 1, and under `omega0 < 1` at most 1: the family has monotone likelihood
//! ratio in `omega0`, so `X_c` is stochastically smaller, and `omega^k` increases in `k`.
//! The product over looks is therefore a nonnegative supermartingale under the null, and
//! so is the mixture `M_t = sum_j w_j prod_s LR_s(omega_j)` over a grid of `omega`. Ville's
//! inequality: `P(exists t: M_t >= 1/alpha) <= alpha`.
//!
//! Exactness. `E_1[omega^K]` is computed as a sum over the support of `h(k) omega^k`, in
//! logs. Terms more than `CUT` nats below the largest are skipped; `h(k) omega^k` is
//! log-concave in `k` (binomial coefficients are), so every skipped term is below that
//! cut, and the skipped count times the cut is added back. The reported ratio uses that
//! upper bound in its denominator and the truncated (lower) sum of `h` in its numerator:
//! it never exceeds the exact ratio.
//!
//! Cost. Each sum starts at its largest term (found by bisection on the ratio of
//! neighbouring terms, which decreases in `k`), anchored there by `ln_gamma`, and walks
//! out by that ratio until the cut: its cost is the spread of the law (about the square
//! root of the look's size), never the look's size, so a look of 10^9 observations per
//! side costs milliseconds and no memory. The `ln_gamma` anchor is exact to about 1e-9
//! relative at a million observations, far below anything a decision reads.
//!
//! Memory: one accumulated log-likelihood ratio per grid point.

use crate::stats::Alternative;

/// Grid of `ln omega`: steps of ln 2 / 8 (9%) up to odds ratio 16, on the alternative's side.
const GRID_STEPS_PER_DOUBLING: i32 = 8;
const GRID_DOUBLINGS: i32 = 4;
/// Terms of a sum more than this many nats below its largest term are bounded, not added.
const CUT: f64 = 40.0;

/// One exceedance e-process.
#[derive(Clone, Debug, PartialEq)]
pub struct ExceedanceTest {
    /// `ln omega_j`, ascending.
    log_omega: Vec<f64>,
    /// `ln w_j`, normalised.
    log_prior: Vec<f64>,
    /// `sum over looks of ln LR(omega_j)` (conservative).
    log_lr: Vec<f64>,
    /// Observations tested so far and those above their look's threshold.
    pub canary_total: u64,
    pub canary_above: u64,
    pub baseline_total: u64,
    pub baseline_above: u64,
}

impl ExceedanceTest {
    /// A test for the given alternative, with a normal prior of sd `prior_sd` on `ln omega`.
    pub fn new(alternative: Alternative, prior_sd: f64) -> Self {
        let step = std::f64::consts::LN_2 / f64::from(GRID_STEPS_PER_DOUBLING);
        let top = GRID_STEPS_PER_DOUBLING * GRID_DOUBLINGS;
        let sides: &[f64] = match alternative {
            Alternative::Greater => &[1.0],
            Alternative::Less => &[-1.0],
            Alternative::TwoSided => &[-1.0, 1.0],
        };
        let mut log_omega: Vec<f64> = sides
            .iter()
            .flat_map(|&sign| (1..=top).map(move |j| sign * f64::from(j) * step))
            .collect();
        log_omega.sort_by(f64::total_cmp);
        let raw: Vec<f64> = log_omega
            .iter()
            .map(|s| -0.5 * (s / prior_sd).powi(2))
            .collect();
        let norm = log_sum_exp(&raw);
        let log_prior = raw.iter().map(|r| r - norm).collect();
        ExceedanceTest {
            log_lr: vec![0.0; log_omega.len()],
            log_omega,
            log_prior,
            canary_total: 0,
            canary_above: 0,
            baseline_total: 0,
            baseline_above: 0,
        }
    }

    /// One look: `n_c` canary observations of which `a_c` above the threshold, and the
    /// same for the baseline. A look with an empty side or a one-valued table carries no
    /// evidence (its likelihood ratio is 1).
    pub fn update(&mut self, n_c: u64, a_c: u64, n_b: u64, a_b: u64) {
        debug_assert!(a_c <= n_c && a_b <= n_b);
        self.canary_total += n_c;
        self.canary_above += a_c;
        self.baseline_total += n_b;
        self.baseline_above += a_b;
        let a = a_c + a_b;
        let n = n_c + n_b;
        if n_c == 0 || n_b == 0 || a == 0 || a == n {
            return;
        }
        let k_min = a.saturating_sub(n_b);
        let k_max = a.min(n_c);
        if k_min == k_max {
            return;
        }
        let table = Table {
            n_c,
            n_b,
            a,
            k_min,
            k_max,
        };
        let x = (a_c - k_min) as f64;
        let (null_lower, _) = table.tilted_log_sum(0.0);
        for (lr, &s) in self.log_lr.iter_mut().zip(&self.log_omega) {
            let (_, upper) = table.tilted_log_sum(s);
            *lr += s * x - upper + null_lower;
        }
    }

    /// `M_t`, the mixture e-value against "canary no more likely above the threshold".
    /// Overflows to +infinity past about 1e308; [`ExceedanceTest::ln_e_value`] does not.
    pub fn e_value(&self) -> f64 {
        self.ln_e_value().exp()
    }

    /// `ln M_t`: the evidence in log space, where it is accumulated, finite at any count.
    pub fn ln_e_value(&self) -> f64 {
        if self.log_lr.iter().all(|&l| l == 0.0) {
            // No evidence yet: exactly 1, not 1 up to the rounding of the prior's sum.
            return 0.0;
        }
        let terms: Vec<f64> = self
            .log_prior
            .iter()
            .zip(&self.log_lr)
            .map(|(p, l)| p + l)
            .collect();
        log_sum_exp(&terms)
    }
}

/// One look's table given its margins: `h(k) = C(n_c, k) C(n_b, a - k)` on
/// `k_min..=k_max` (more than one value).
struct Table {
    n_c: u64,
    n_b: u64,
    a: u64,
    k_min: u64,
    k_max: u64,
}

impl Table {
    /// `ln h(k)`.
    fn ln_h(&self, k: u64) -> f64 {
        ln_choose(self.n_c, k) + ln_choose(self.n_b, self.a - k)
    }

    /// `ln h(k + 1) - ln h(k)`, for `k < k_max`: decreasing in `k`.
    fn step(&self, k: u64) -> f64 {
        let (nc, nb, a, k) = (self.n_c as f64, self.n_b as f64, self.a as f64, k as f64);
        ((nc - k) * (a - k)).ln() - ((k + 1.0) * (nb - a + k + 1.0)).ln()
    }

    /// The `k` at which `ln h(k) + s k` is largest: the first whose step up is negative.
    fn mode(&self, s: f64) -> u64 {
        let (mut lo, mut hi) = (self.k_min, self.k_max);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.step(mid) + s >= 0.0 {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Lower and upper bounds of `ln sum_k exp(ln h(k) + s (k - k_min))`.
    fn tilted_log_sum(&self, s: f64) -> (f64, f64) {
        let m = self.mode(s);
        let peak = self.ln_h(m) + s * (m - self.k_min) as f64;
        let mut sum = 1.0;
        let mut skipped = 0u64;
        // Down from the mode: term(k) = term(k + 1) - step(k) - s.
        let mut t = 0.0;
        let mut k = m;
        while k > self.k_min {
            k -= 1;
            t -= self.step(k) + s;
            if t < -CUT {
                skipped += k - self.k_min + 1;
                break;
            }
            sum += t.exp();
        }
        // Up from the mode: term(k + 1) = term(k) + step(k) + s.
        let mut t = 0.0;
        let mut k = m;
        while k < self.k_max {
            t += self.step(k) + s;
            k += 1;
            if t < -CUT {
                skipped += self.k_max - k + 1;
                break;
            }
            sum += t.exp();
        }
        let lower = peak + sum.ln();
        let upper = peak + (sum + skipped as f64 * (-CUT).exp()).ln();
        (lower, upper)
    }
}

/// `ln C(n, k)`.
fn ln_choose(n: u64, k: u64) -> f64 {
    use statrs::function::gamma::ln_gamma;
    let (n, k) = (n as f64, k as f64);
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ln_choose(n: u64, k: u64) -> f64 {
        (1..=k)
            .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
            .sum()
    }

    /// The likelihood ratio against a direct sum over the support.
    #[test]
    fn likelihood_ratio_matches_a_direct_sum() {
        let (n_c, a_c, n_b, a_b) = (40u64, 26u64, 50u64, 20u64);
        let a = a_c + a_b;
        let mut test = ExceedanceTest::new(Alternative::Greater, 0.5);
        test.update(n_c, a_c, n_b, a_b);
        let k_min = a.saturating_sub(n_b);
        let k_max = a.min(n_c);
        let h: Vec<(u64, f64)> = (k_min..=k_max)
            .map(|k| (k, (ln_choose(n_c, k) + ln_choose(n_b, a - k)).exp()))
            .collect();
        let total: f64 = h.iter().map(|(_, v)| v).sum();
        for (j, &s) in test.log_omega.iter().enumerate() {
            let tilted: f64 = h.iter().map(|&(k, v)| v * (s * k as f64).exp()).sum();
            let want = (s * a_c as f64).exp() * total / tilted;
            let got = test.log_lr[j].exp();
            assert!((got - want).abs() <= 1e-9 * want, "s {s}: {got} vs {want}");
        }
    }

    /// Averaged over the exact null law of one look, the e-value is at most 1 (it is 1 up
    /// to rounding); under a better canary it is below 1.
    #[test]
    fn e_value_has_mean_at_most_one_under_the_null() {
        let (n_c, n_b, a) = (30u64, 45u64, 25u64);
        let k_min = a.saturating_sub(n_b);
        let k_max = a.min(n_c);
        let weights: Vec<f64> = (k_min..=k_max)
            .map(|k| (ln_choose(n_c, k) + ln_choose(n_b, a - k)).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mean_under = |omega: f64| {
            let w: Vec<f64> = (k_min..=k_max)
                .zip(&weights)
                .map(|(k, h)| h * omega.powi(k as i32))
                .collect();
            let z: f64 = w.iter().sum();
            (k_min..=k_max)
                .zip(&w)
                .map(|(k, p)| {
                    let mut t = ExceedanceTest::new(Alternative::Greater, 0.5);
                    t.update(n_c, k, n_b, a - k);
                    p / z * t.e_value()
                })
                .sum::<f64>()
        };
        let at_null = mean_under(1.0);
        assert!(
            (at_null - 1.0).abs() < 1e-9 && at_null <= 1.0 + 1e-12,
            "{at_null}"
        );
        assert!(mean_under(0.7) < 1.0);
        assert!(total > 0.0);
    }

    #[test]
    fn degenerate_tables_carry_no_evidence() {
        let mut t = ExceedanceTest::new(Alternative::TwoSided, 0.5);
        t.update(0, 0, 100, 50);
        t.update(100, 0, 100, 0);
        t.update(100, 100, 100, 100);
        assert!((t.e_value() - 1.0).abs() < 1e-12);
        assert_eq!((t.canary_total, t.canary_above), (200, 100));
    }

    #[test]
    fn a_slower_canary_builds_evidence_and_a_faster_one_does_not() {
        let mut slow = ExceedanceTest::new(Alternative::Greater, 0.5);
        let mut fast = ExceedanceTest::new(Alternative::Greater, 0.5);
        for _ in 0..4 {
            slow.update(1_500, 860, 1_500, 750);
            fast.update(1_500, 640, 1_500, 750);
        }
        assert!(slow.e_value() > 1e4, "{}", slow.e_value());
        assert!(fast.e_value() < 1e-3, "{}", fast.e_value());
    }

    /// Looks of a billion observations a side: no table is built, evidence stays finite
    /// and grows in log space.
    #[test]
    fn huge_looks_cost_the_spread_not_the_size() {
        let mut t = ExceedanceTest::new(Alternative::Greater, 0.5);
        for _ in 0..200 {
            t.update(1_000_000_000, 520_000_000, 1_000_000_000, 500_000_000);
        }
        let ln_e = t.ln_e_value();
        assert!(ln_e.is_finite() && ln_e > 1e5, "{ln_e}");
        assert_eq!(t.e_value(), f64::INFINITY);
        let mut same = ExceedanceTest::new(Alternative::Greater, 0.5);
        for _ in 0..200 {
            same.update(1_000_000_000, 500_000_000, 1_000_000_000, 500_000_000);
        }
        assert!(same.ln_e_value() < 1.0, "{}", same.ln_e_value());
    }

    /// The walk from the mode agrees with summing every term, also when the mode sits at
    /// an end of the support.
    #[test]
    fn tilted_sums_match_every_term() {
        for (n_c, n_b, a) in [
            (40u64, 50u64, 46u64),
            (30, 30, 2),
            (30, 30, 58),
            (500, 20, 30),
        ] {
            let k_min = a.saturating_sub(n_b);
            let k_max = a.min(n_c);
            let table = Table {
                n_c,
                n_b,
                a,
                k_min,
                k_max,
            };
            for s in [-3.0, -0.3, 0.0, 0.4, 3.0] {
                let direct = log_sum_exp(
                    &(k_min..=k_max)
                        .map(|k| table.ln_h(k) + s * (k - k_min) as f64)
                        .collect::<Vec<_>>(),
                );
                let (lower, upper) = table.tilted_log_sum(s);
                assert!(
                    (lower - direct).abs() < 1e-9,
                    "{n_c} {n_b} {a} {s}: {lower} vs {direct}"
                );
                assert!(upper >= lower && upper - direct < 1e-9);
            }
        }
    }
}
