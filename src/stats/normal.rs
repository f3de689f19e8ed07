//! The standard normal distribution, the one place the rest of `stats` gets it from.
//!
//! `libm` (the musl port) supplies erfc, accurate to an ulp or two across the range, which
//! is what SciPy's `norm.sf` reduces to as well; `statrs`'s erfc is only good to about
//! 1e-10 relative, too coarse for p-values checked to 1e-9. `statrs` supplies the inverse.

use libm::erfc;
use statrs::function::erf::erfc_inv;

/// P(Z > z).
pub fn sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// P(Z <= z).
pub fn cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The z with P(Z <= z) = p, for p in (0, 1).
pub fn ppf(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The z with P(Z > z) = p, for p in (0, 1); exact in the far upper tail.
pub fn isf(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_known_values() {
        // scipy.stats.norm.sf(1.96), norm.ppf(0.975), norm.sf(10)
        assert!((sf(1.96) / 0.024997895148220435 - 1.0).abs() < 1e-14);
        assert!((ppf(0.975) - 1.959963984540054).abs() < 1e-12);
        assert!((sf(10.0) / 7.619853024160527e-24 - 1.0).abs() < 1e-12);
        assert!((isf(0.01) - 2.3263478740408408).abs() < 1e-12);
        assert!((cdf(-1.0) / 0.15865525393145707 - 1.0).abs() < 1e-14);
    }
}
