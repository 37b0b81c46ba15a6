//! A served adapter's matrices and the two steps of its update of one row: `t = A x`, then
//! `y += tᵀ (s · Bᵀ)` over any range of the output's columns, so that both steps split over
//! threads for a single decoded row.
//!
//! Over an int8 base, the matrices are held in `f16`: half the bytes an adapter's update reads,
//! which is what it costs when decoding, as vLLM and LoRAX keep adapters in the base's 16-bit
//! type. The rounding (a relative 2⁻¹¹ of each value) is an eighth of the int8 activations'
//! and only touches the adapter's small addition to the base. Over a dense base they stay `f32`,
//! so that a served adapter matches the trained one to float precision.

use half::f16;

/// A matrix's values, row-major.
#[derive(Clone, Debug)]
pub enum Values {
	/// Full precision.
	F32(Vec<f32>),
	/// Half precision.
	F16(Vec<f16>),
}

impl Values {
	/// `values`, in half precision when `half`.
	pub fn new(values: Vec<f32>, half: bool) -> Self {
		if half {
			Values::F16(values.iter().map(|&v| f16::from_f32(v)).collect())
		} else {
			Values::F32(values)
		}
	}

	/// Values held.
	pub(crate) fn len(&self) -> usize {
		match self {
			Values::F32(v) => v.len(),
			Values::F16(v) => v.len(),
		}
	}

	/// Bytes held.
	pub fn bytes(&self) -> usize {
		match self {
			Values::F32(v) => 4 * v.len(),
			Values::F16(v) => 2 * v.len(),
		}
	}

	/// The dot product of `x` with values `start..start + x.len()`.
	pub fn dot(&self, start: usize, x: &[f32]) -> f32 {
		match self {
			Values::F32(v) => super::vector::dot(&v[start..start + x.len()], x),
			Values::F16(v) => dot_f16(&v[start..start + x.len()], x),
		}
	}

	/// `y += t · values[start..start + y.len()]`.
	pub fn add_scaled_to(&self, y: &mut [f32], t: f32, start: usize) {
		match self {
			Values::F32(v) => super::vector::add_scaled(y, t, &v[start..start + y.len()]),
			Values::F16(v) => add_scaled_f16(y, t, &v[start..start + y.len()]),
		}
	}
}

/// `a · x`.
fn dot_f16(a: &[f16], x: &[f32]) -> f32 {
	assert_eq!(a.len(), x.len());
	#[cfg(target_arch = "x86_64")]
	if std::arch::is_x86_feature_detected!("avx512f") {
		// SAFETY: the CPU has the feature; the lengths are equal.
		return unsafe { x86::dot(a, x) };
	}
	a.iter().zip(x).map(|(a, x)| a.to_f32() * x).sum()
}

/// `y += t · b`.
fn add_scaled_f16(y: &mut [f32], t: f32, b: &[f16]) {
	assert_eq!(y.len(), b.len());
	#[cfg(target_arch = "x86_64")]
	if std::arch::is_x86_feature_detected!("avx512f") {
		// SAFETY: the CPU has the feature; the lengths are equal.
		return unsafe { x86::add_scaled(y, t, b) };
	}
	y.iter_mut().zip(b).for_each(|(y, b)| *y += t * b.to_f32());
}

#[cfg(target_arch = "x86_64")]
mod x86 {
	use half::f16;
	use std::arch::x86_64::*;

	/// Sixteen values a step, widened by `vcvtph2ps`.
	#[target_feature(enable = "avx512f")]
	pub(super) unsafe fn dot(a: &[f16], x: &[f32]) -> f32 {
		let whole = a.len() / 16 * 16;
		let mut sum = _mm512_setzero_ps();
		for i in (0..whole).step_by(16) {
			let a = _mm512_cvtph_ps(_mm256_loadu_si256(a.as_ptr().add(i).cast()));
			sum = _mm512_fmadd_ps(a, _mm512_loadu_ps(x.as_ptr().add(i)), sum);
		}
		let tail: f32 = a[whole..].iter().zip(&x[whole..]).map(|(a, x)| a.to_f32() * x).sum();
		_mm512_reduce_add_ps(sum) + tail
	}

	#[target_feature(enable = "avx512f")]
	pub(super) unsafe fn add_scaled(y: &mut [f32], t: f32, b: &[f16]) {
		let whole = b.len() / 16 * 16;
		let scale = _mm512_set1_ps(t);
		for i in (0..whole).step_by(16) {
			let b = _mm512_cvtph_ps(_mm256_loadu_si256(b.as_ptr().add(i).cast()));
			let at = y.as_mut_ptr().add(i);
			_mm512_storeu_ps(at, _mm512_fmadd_ps(b, scale, _mm512_loadu_ps(at)));
		}
		y[whole..].iter_mut().zip(&b[whole..]).for_each(|(y, b)| *y += t * b.to_f32());
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	#[test]
	fn half_values_give_the_products_of_their_rounded_values() {
		let mut rng = Rng::new(2);
		for n in [5, 16, 100, 576] {
			let (a, x) = (rng.uniform_vec(n, 0.5), rng.uniform_vec(n, 2.0));
			let half = Values::new(a.clone(), true);
			let rounded: Vec<f32> = a.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
			let exact: f32 = rounded.iter().zip(&x).map(|(a, x)| a * x).sum();
			assert!((half.dot(0, &x) - exact).abs() < 1e-4, "{n}");
			assert_eq!(Values::new(a.clone(), false).dot(0, &x), super::super::vector::dot(&a, &x));
			let mut y = x.clone();
			half.add_scaled_to(&mut y, 0.5, 0);
			for ((y, x), a) in y.iter().zip(&x).zip(&rounded) {
				assert!((y - (x + 0.5 * a)).abs() < 1e-6);
			}
			assert_eq!(half.bytes(), 2 * n);
		}
	}
}
