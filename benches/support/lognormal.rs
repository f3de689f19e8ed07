//! Fixed-seed lognormal samples for the Mann-Whitney bench and `examples/mw_timing.rs`,
//! so both time the same data run after run.

/// splitmix64: tiny, fast, and a fixed seed gives the same stream everywhere.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1), never 0, so its logarithm is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// exp(mu + sigma Z), Z standard normal by the Box-Muller transform.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (mu + sigma * z).exp()
    }
}

/// `n` latency-like values (median e^mu ms, sigma 0.5 on the log scale).
pub fn samples(n: usize, seed: u64, mu: f64) -> Vec<f64> {
    let mut g = Gen::new(seed);
    (0..n).map(|_| g.lognormal(mu, 0.5)).collect()
}
