//! `Sorted`: a NaN-free sample in ascending order, the input of every rank statistic.
//!
//! Sorting dominates the cost of a rank test on large samples, so it is done once per
//! sample and shared by Mann-Whitney, Hodges-Lehmann and the effect sizes.
//!
//! Invariant: a `Sorted` holds no NaN and no `-0.0` (it is stored as `0.0`), and its values
//! are ascending, so `==` between neighbours is exactly "same value" and tie groups can be
//! found by comparing neighbours.
//!
//! Why the sort is written here rather than taken from a crate: a rank test needs three
//! things from its sort that a general float sort does not give together. It must refuse
//! NaN and say where it was; it must treat `-0.0` and `0.0` as one value (a tie), where a
//! total order puts them apart; and its memory should be ours to bound, because at a
//! million values per side the scratch buffers are the memory cost of the whole test
//! (here: two u64 buffers the length of the sample, the floats written back in place).
//! The well-kept `radsort` crate sorts floats correctly in `total_cmp` order, which keeps
//! `-0.0 < 0.0` apart and sorts NaN to either end by its sign bit instead of refusing it,
//! and it allocates its own scratch on every call; using it would still need a separate
//! pass over the data for NaN and `-0.0`. Folding that pass into the key transform of our
//! own LSD radix sort makes it free.

use super::StatsError;

/// Below this many values the comparison sort wins: a radix sort pays a fixed few
/// microseconds for its histograms whatever the length. Measured with
/// `cargo run --release --example mw_timing -- sort N` (thresholds lowered): level near
/// 5,000 values, the 11-bit radix sort 1.5x faster at 8,192 and 1.9x at 32,768.
const RADIX_MIN_LEN: usize = 4096;

/// Width of one radix digit; see `radix_sort` for how it was chosen.
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;

const SIGN: u64 = 1 << 63;

/// A sample with no NaN, sorted ascending (`-0.0` is stored as `0.0`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sorted(Vec<f64>);

impl Sorted {
    /// Sorts `values`; refuses NaN, naming `which` sample and the position.
    pub fn new(values: Vec<f64>, which: &'static str) -> Result<Self, StatsError> {
        let mut values = values;
        let outcome = if values.len() < RADIX_MIN_LEN {
            comparison_sort(&mut values)
        } else {
            radix_sort(&mut values)
        };
        match outcome {
            Ok(()) => Ok(Sorted(values)),
            Err(index) => Err(StatsError::NaN { which, index }),
        }
    }

    /// Sorts two samples at once (on two threads when they are large).
    pub fn pair(canary: Vec<f64>, baseline: Vec<f64>) -> Result<(Sorted, Sorted), StatsError> {
        let (c, b) = rayon::join(
            || Sorted::new(canary, "canary"),
            || Sorted::new(baseline, "baseline"),
        );
        Ok((c?, b?))
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<f64> {
        self.0
    }
}

/// Sorts small inputs in place; `Err` holds the position of the first NaN.
fn comparison_sort(values: &mut [f64]) -> Result<(), usize> {
    for (index, v) in values.iter_mut().enumerate() {
        if v.is_nan() {
            return Err(index);
        }
        // IEEE addition of +0.0 maps -0.0 to +0.0 and leaves every other value alone.
        *v += 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    Ok(())
}

/// Maps a non-NaN float to an unsigned key with the same order: non-negative floats get
/// the sign bit set, negative ones have every bit flipped (their bit patterns grow as the
/// value falls).
fn key(v: f64) -> u64 {
    let bits = v.to_bits();
    let flip = ((bits as i64) >> 63) as u64 | SIGN;
    bits ^ flip
}

fn from_key(k: u64) -> f64 {
    let flip = if k & SIGN != 0 { SIGN } else { u64::MAX };
    f64::from_bits(k ^ flip)
}

/// LSD radix sort of `values` through their order-preserving keys.
///
/// The digits are those of `key - min key`: a sample spans far fewer bits than the
/// 64 of its keys, and counting from the smallest key drops the top digits entirely even
/// when the sample straddles a power of two (where the raw keys' top bits all change).
/// Digits that are the same in every key are skipped too: the low mantissa bits of
/// whole-number data, say.
///
/// Memory: one key buffer and one scratch buffer of `values.len()` u64 each; the last pass
/// writes the decoded floats straight back into `values`.
///
/// Digit width: wider digits mean fewer passes over memory but more buckets scattered to
/// at once. A lognormal sample spanning two decades spans about 55 bits of key: 11-bit
/// digits take 5 passes into 2,048 buckets, whose heads (8 KB) stay in L1. 14-bit digits
/// take 4 passes, but their 16,384 heads (64 KB) overflow this machine's 48 KB L1 and
/// the sort of 1,000,000 values went from 22 ms to 41 ms; 16-bit digits were slower still.
/// 8-bit digits (7 passes) tied with 11. Measured with `mw_timing sort N`.
fn radix_sort(values: &mut [f64]) -> Result<(), usize> {
    let digit = |k: u64, pass: usize| ((k >> (pass as u32 * DIGIT_BITS)) as usize) & (BUCKETS - 1);
    let n = values.len();
    // Counts are u32 to halve the histograms' cache footprint; longer inputs (over four
    // billion values) take the comparison sort instead.
    if u32::try_from(n).is_err() {
        return comparison_sort(values);
    }
    let mut any_nan = false;
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let keys: Vec<u64> = values
        .iter()
        .map(|&v| {
            any_nan |= v.is_nan();
            let k = key(v + 0.0);
            lo = lo.min(k);
            hi = hi.max(k);
            k
        })
        .collect();
    if any_nan {
        return Err(values.iter().position(|v| v.is_nan()).unwrap_or(0));
    }
    let span_bits = (u64::BITS - (hi - lo).leading_zeros()) as usize;
    let passes = span_bits.div_ceil(DIGIT_BITS as usize);

    // The offsets from the smallest key go to a second buffer, written in order: a fresh
    // buffer's pages are mapped on first touch, which costs far less in a sequential
    // pass than in a scatter (at 1,000,000 values the first scatter into a fresh buffer
    // took about 9 ms, later ones 3 to 4 ms).
    let mut counts = vec![0u32; BUCKETS * passes];
    let mut src: Vec<u64> = keys
        .iter()
        .map(|&k| {
            let k = k - lo;
            for (pass, count) in counts.chunks_exact_mut(BUCKETS).enumerate() {
                count[digit(k, pass)] += 1;
            }
            k
        })
        .collect();
    let count = |pass: usize| &counts[pass * BUCKETS..(pass + 1) * BUCKETS];
    let active: Vec<usize> = (0..passes)
        .filter(|&pass| count(pass)[digit(src[0], pass)] as usize != n)
        .collect();

    let Some((&last, middle)) = active.split_last() else {
        // Every key is the same (no pass is active only then): nothing to reorder.
        values.iter_mut().for_each(|v| *v = from_key(lo));
        return Ok(());
    };

    let mut dst = keys;
    for &pass in middle {
        let mut heads = prefix_offsets(count(pass));
        for &k in &src {
            let head = &mut heads[digit(k, pass)];
            dst[*head as usize] = k;
            *head += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    let mut heads = prefix_offsets(count(last));
    for &k in &src {
        let head = &mut heads[digit(k, last)];
        values[*head as usize] = from_key(k + lo);
        *head += 1;
    }
    Ok(())
}

/// Where each bucket starts in the output of a pass.
fn prefix_offsets(count: &[u32]) -> Vec<u32> {
    let mut sum = 0;
    count
        .iter()
        .map(|&c| {
            let head = sum;
            sum += c;
            head
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg_values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // A spread of magnitudes and both signs, with repeats.
                let m = ((s >> 33) % 2000) as f64 - 1000.0;
                let e = ((s >> 20) % 40) as i32 - 20;
                m * 2f64.powi(e)
            })
            .collect()
    }

    fn reference_sort(mut v: Vec<f64>) -> Vec<f64> {
        v.iter_mut().for_each(|x| *x += 0.0);
        v.sort_unstable_by(f64::total_cmp);
        v
    }

    #[test]
    fn radix_matches_comparison_sort_on_mixed_values() {
        for &n in &[RADIX_MIN_LEN, 5000, 100_000] {
            let v = lcg_values(n, n as u64);
            let sorted = Sorted::new(v.clone(), "canary").unwrap();
            assert_eq!(sorted.as_slice(), reference_sort(v).as_slice());
        }
    }

    #[test]
    fn special_values_sort_in_order_and_negative_zero_becomes_zero() {
        let mut v = vec![
            f64::INFINITY,
            -0.0,
            0.0,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            -1.5,
            1.5,
        ];
        for n in [v.len(), 3 * RADIX_MIN_LEN] {
            v.resize(n, -0.0);
            for sorted in [
                Sorted::new(v.clone(), "canary").unwrap(),
                Sorted::new(v.iter().rev().copied().collect(), "canary").unwrap(),
            ] {
                let s = sorted.as_slice();
                assert!(s.windows(2).all(|w| w[0] <= w[1]));
                assert!(s.iter().all(|x| x.to_bits() != (-0.0f64).to_bits()));
                assert_eq!(s.first(), Some(&f64::NEG_INFINITY));
                assert_eq!(s.last(), Some(&f64::INFINITY));
                assert_eq!(s.iter().filter(|&&x| x == 0.0).count(), n - 10);
            }
        }
    }

    #[test]
    fn nan_is_refused_with_its_position() {
        for n in [10, 2 * RADIX_MIN_LEN] {
            let mut v = lcg_values(n, 7);
            v[n / 2] = f64::NAN;
            v[n - 1] = -f64::NAN;
            assert_eq!(
                Sorted::new(v, "baseline"),
                Err(StatsError::NaN {
                    which: "baseline",
                    index: n / 2
                })
            );
        }
    }

    #[test]
    fn constant_and_narrow_inputs_skip_passes_correctly() {
        for n in [RADIX_MIN_LEN, 4 * RADIX_MIN_LEN] {
            let constant = vec![3.25; n];
            assert_eq!(
                Sorted::new(constant.clone(), "c").unwrap().as_slice(),
                &constant[..]
            );
            // Values differing only in the lowest mantissa bits: one active pass.
            let narrow: Vec<f64> = (0..n)
                .map(|i| f64::from_bits(1.0f64.to_bits() + ((i * 7919) % 1000) as u64))
                .collect();
            assert_eq!(
                Sorted::new(narrow.clone(), "c").unwrap().into_vec(),
                reference_sort(narrow)
            );
        }
    }

    #[test]
    fn pair_names_the_sample_holding_nan() {
        let err = Sorted::pair(vec![1.0, 2.0], vec![0.5, f64::NAN]).unwrap_err();
        assert_eq!(
            err,
            StatsError::NaN {
                which: "baseline",
                index: 1
            }
        );
    }
}
