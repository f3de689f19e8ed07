//! Pure statistics: ranks, Mann-Whitney U, Hodges-Lehmann, log-bucketed histograms,
//! effect sizes, error proportions and the interval on their ratio, error-budget burn
//! rates and anytime-valid sequential tests.
//!
//! Invariant: nothing in this module does I/O, reads a clock, spawns work that changes
//! results, or draws random numbers. Same input, same output, bit for bit.
//!
//! Conventions shared by every test here:
//! - `canary` is the first sample (`x` in SciPy/R), `baseline` the second (`y`).
//! - U is the statistic of the canary: `U = R_canary - n_c (n_c + 1) / 2`.
//! - Shifts are `canary - baseline`; ratios are `canary / baseline`.
//! - `Alternative::Greater` means "canary tends to be larger than baseline".

pub mod burn;
pub mod effect;
pub mod histogram;
pub mod hodges_lehmann;
pub mod mannwhitney;
pub mod nonfinite;
pub mod normal;
pub mod proportions;
pub mod rank;
pub mod ratio;
pub mod sequential;
pub mod sorted;

use serde::{Deserialize, Serialize};

pub use histogram::LogHistogram;
pub use sorted::Sorted;

/// Which way the alternative hypothesis points, seen from the canary.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    /// The two distributions differ in location, either way.
    #[default]
    TwoSided,
    /// The canary tends to be larger than the baseline.
    Greater,
    /// The canary tends to be smaller than the baseline.
    Less,
}

/// How a caller asks for a p-value (or interval) to be computed.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Exact when both samples are small and there are no ties, asymptotic otherwise.
    #[default]
    Auto,
    Exact,
    Asymptotic,
}

/// How a p-value (or interval) was actually computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MethodUsed {
    Exact,
    Asymptotic,
}

/// What can go wrong in a statistic. Messages say which input and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{which} sample is empty")]
    Empty { which: &'static str },
    #[error("{which} sample holds NaN at position {index}")]
    NaN { which: &'static str, index: usize },
    #[error("confidence level {0} is not in (0, 1)")]
    ConfLevel(f64),
    #[error("{0}")]
    Invalid(String),
}
