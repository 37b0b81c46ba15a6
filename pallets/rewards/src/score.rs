//! The ranking arithmetic, in fixed point so every node computes the same figures: the Wilson
//! lower bound of an acceptance rate, and the half-life decay of rejections.

use crate::sp_arithmetic::{
	traits::{One, Saturating, Zero},
	FixedPointNumber, FixedU128, Perbill,
};

/// z for a 95% two-sided confidence interval.
const Z: FixedU128 = FixedU128::from_inner(1_959_963_984_540_054_000);

/// The lower bound of the 95% Wilson score interval of `accepted / (accepted + rejected)`.
///
/// It ranks by acceptance rate while distrusting small samples: 9 accepted and 1 rejected
/// (0.596) ranks above 2 accepted and none rejected (0.342), and no record ranks at zero.
pub fn wilson_lower_bound(accepted: u32, rejected: FixedU128) -> Perbill {
	let accepted = FixedU128::from_u32(accepted);
	let n = accepted.saturating_add(rejected);
	if n.is_zero() || accepted.is_zero() {
		return Perbill::zero();
	}
	let z2 = Z.saturating_mul(Z);
	let p = accepted.over(n);
	let q = FixedU128::one().saturating_sub(p);
	let four_n2 = n.saturating_mul(n).saturating_mul(FixedU128::from_u32(4));
	let variance = p.saturating_mul(q).over(n).saturating_add(z2.over(four_n2));
	let spread = Z.saturating_mul(variance.sqrt());
	let centre = p.saturating_add(z2.over(n.saturating_mul(FixedU128::from_u32(2))));
	let bound = centre.saturating_sub(spread).over(FixedU128::one().saturating_add(z2.over(n)));
	to_perbill(bound)
}

/// The weight left to a rejection `epochs` epochs old: `2^(-epochs / half_life)`.
///
/// Exact at whole half-lives (one half after `half_life` epochs); in between, the fractional
/// root is found by bisection to well under a part per billion. A `half_life` of zero forgets
/// rejections at the next epoch.
pub fn decay_factor(epochs: u32, half_life: u32) -> FixedU128 {
	if epochs == 0 {
		return FixedU128::one();
	}
	if half_life == 0 {
		return FixedU128::zero();
	}
	let half = FixedU128::from_rational(1, 2);
	let whole = epochs / half_life;
	if whole >= 64 {
		return FixedU128::zero();
	}
	let base = half.saturating_pow(whole as usize);
	let remainder = epochs % half_life;
	if remainder == 0 {
		return base;
	}
	// x = 2^(-remainder/half_life) is the root of x^half_life = 2^-remainder in [1/2, 1].
	let target = half.saturating_pow(remainder as usize);
	let (mut low, mut high) = (half, FixedU128::one());
	for _ in 0..64 {
		let mid = FixedU128::from_inner((low.into_inner() + high.into_inner()) / 2);
		if mid.saturating_pow(half_life as usize) > target {
			high = mid;
		} else {
			low = mid;
		}
	}
	base.saturating_mul(low)
}

/// A fraction in `[0, 1]` as parts per billion, rounded down.
pub fn to_perbill(value: FixedU128) -> Perbill {
	let parts = value.into_inner() / (FixedU128::DIV / 1_000_000_000);
	Perbill::from_parts(parts.min(1_000_000_000) as u32)
}

trait OverOrZero {
	fn over(self, other: Self) -> Self;
}

impl OverOrZero for FixedU128 {
	/// Division where a zero divisor gives zero; the callers never divide by zero.
	fn over(self, other: Self) -> Self {
		crate::sp_arithmetic::traits::CheckedDiv::checked_div(&self, &other).unwrap_or_default()
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn wilson_f64(accepted: f64, rejected: f64) -> f64 {
		let z = 1.959963984540054_f64;
		let n = accepted + rejected;
		let p = accepted / n;
		(p + z * z / (2.0 * n) - z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt())
			/ (1.0 + z * z / n)
	}

	fn fixed(value: f64) -> FixedU128 {
		FixedU128::from_float(value)
	}

	#[test]
	fn wilson_matches_the_textbook_formula() {
		for (a, r) in [(1, 0.0), (2, 0.0), (9, 1.0), (3, 2.5), (100, 7.25), (1_000_000, 1.0)] {
			let expected = wilson_f64(a as f64, r);
			let got = wilson_lower_bound(a, fixed(r)).deconstruct() as f64 / 1e9;
			assert!((got - expected).abs() < 1e-8, "A={a} R={r}: {got} vs {expected}");
		}
	}

	#[test]
	fn acceptance_rate_beats_volume() {
		let nine_and_one = wilson_lower_bound(9, FixedU128::from_u32(1));
		let two_and_none = wilson_lower_bound(2, FixedU128::zero());
		assert!(nine_and_one > two_and_none, "{nine_and_one:?} <= {two_and_none:?}");
		// And volume still counts between equal rates.
		assert!(
			wilson_lower_bound(20, FixedU128::zero()) > wilson_lower_bound(2, FixedU128::zero())
		);
	}

	#[test]
	fn no_record_or_no_acceptance_scores_zero() {
		assert_eq!(wilson_lower_bound(0, FixedU128::zero()), Perbill::zero());
		assert_eq!(wilson_lower_bound(0, FixedU128::from_u32(3)), Perbill::zero());
	}

	#[test]
	fn a_rejection_halves_every_half_life() {
		assert_eq!(decay_factor(0, 7), FixedU128::one());
		assert_eq!(decay_factor(7, 7), FixedU128::from_rational(1, 2));
		assert_eq!(decay_factor(14, 7), FixedU128::from_rational(1, 4));
		let one_epoch = decay_factor(1, 7).to_float();
		assert!((one_epoch - 0.5_f64.powf(1.0 / 7.0)).abs() < 1e-12, "{one_epoch}");
		let ten = decay_factor(10, 7).to_float();
		assert!((ten - 0.5_f64.powf(10.0 / 7.0)).abs() < 1e-12, "{ten}");
		// Successive single epochs compose to the same half.
		let stepwise = (0..7).fold(FixedU128::one(), |w, _| w.saturating_mul(decay_factor(1, 7)));
		assert!((stepwise.to_float() - 0.5).abs() < 1e-12);
		assert_eq!(decay_factor(5_000, 7), FixedU128::zero());
		assert_eq!(decay_factor(1, 0), FixedU128::zero());
	}
}
