//! A seeded random number generator of our own.
//!
//! candle cannot seed its CPU generator, and a run must be reproducible from its seed so that
//! the adapter's hash is. SplitMix64 is tiny, passes BigCrush, and every stream derived with
//! [`Rng::derive`] is a pure function of the seed and a label, so dropout masks and data order
//! never depend on how far an earlier run got (which is what makes `--resume` byte-exact).

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub struct Rng {
	state: u64,
}

impl Rng {
	/// A generator seeded with `seed`.
	pub fn new(seed: u64) -> Self {
		Self { state: seed }
	}

	/// An independent stream for `labels`, a pure function of this generator's seed.
	pub fn derive(seed: u64, labels: &[u64]) -> Self {
		let mut rng = Self::new(seed);
		for &label in labels {
			rng.state ^= label.wrapping_mul(0xD1B5_4A32_D192_ED03);
			rng.next_u64();
		}
		rng
	}

	/// The next 64 random bits.
	pub fn next_u64(&mut self) -> u64 {
		self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
		let mut z = self.state;
		z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
		z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
		z ^ (z >> 31)
	}

	/// Uniform in `[0, 1)` with 24 bits, exact in `f32`.
	pub fn next_f32(&mut self) -> f32 {
		(self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
	}

	/// Uniform in `[0, n)`.
	pub fn below(&mut self, n: usize) -> usize {
		((self.next_u64() as u128 * n as u128) >> 64) as usize
	}

	/// Fisher–Yates shuffle.
	pub fn shuffle<T>(&mut self, items: &mut [T]) {
		for i in (1..items.len()).rev() {
			items.swap(i, self.below(i + 1));
		}
	}

	/// `n` values uniform in `[-bound, bound)`.
	pub fn uniform_vec(&mut self, n: usize, bound: f32) -> Vec<f32> {
		(0..n).map(|_| (self.next_f32() * 2.0 - 1.0) * bound).collect()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn streams_are_reproducible_and_distinct() {
		let a: Vec<u64> = (0..4).map(|_| Rng::derive(7, &[1, 2]).next_u64()).collect();
		assert!(a.windows(2).all(|w| w[0] == w[1]));
		assert_ne!(Rng::derive(7, &[1, 2]).next_u64(), Rng::derive(7, &[2, 1]).next_u64());
		assert_ne!(Rng::derive(7, &[1]).next_u64(), Rng::derive(8, &[1]).next_u64());
	}

	#[test]
	fn uniform_values_cover_the_range() {
		let v = Rng::new(1).uniform_vec(10_000, 0.5);
		assert!(v.iter().all(|x| (-0.5..0.5).contains(x)));
		let mean = v.iter().sum::<f32>() / v.len() as f32;
		assert!(mean.abs() < 0.02, "mean {mean}");
	}
}
