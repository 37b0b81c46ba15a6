//! Int8 weights times int8 activations, for decoding from an int8 base.
//!
//! Decoding a token is one row of `x` against every weight row, so the product is bound by
//! how fast a weight row can be read. Decoding each row to `f32` and then taking an `f32` dot
//! product spent half of a decode step (a profile of the serving benchmark) on eight passes of
//! sixteen lanes per block. Here the activations are quantised once per row, block by block
//! as the weights are (absmax/127 over [`BLOCK`] values), and a block's dot product is exact
//! integer arithmetic: one `vpdpbusd` per 64 weights with AVX-512 VNNI, `vpmaddubsw` with
//! AVX2, scalar code elsewhere. The only error added is the activations' rounding, at most
//! half a step of their block's scale per value (llama.cpp quantises activations the same
//! way for its int8 and 4-bit dot products).

use crate::quant::{QuantKind, QuantizedMatrix, BLOCK};

/// A row of activations quantised as int8 weights are ([`QuantizedMatrix`]).
#[derive(Clone, Debug)]
pub struct QuantizedRow {
	values: QuantizedMatrix,
	/// `128 · Σ codes` per block: what the AVX-512 kernel's unsigned weights add, taken off
	/// in lane 0 of each block's accumulator.
	offsets: Vec<i32>,
}

impl QuantizedRow {
	/// `x` quantised; `x.len()` must be a multiple of [`BLOCK`].
	pub fn new(x: &[f32]) -> Self {
		debug_assert!(x.len().is_multiple_of(BLOCK));
		let values = QuantizedMatrix::quantize(QuantKind::Int8, x);
		let offsets = values
			.codes
			.chunks_exact(BLOCK)
			.map(|block| 128 * block.iter().map(|&c| c as i8 as i32).sum::<i32>())
			.collect();
		Self { values, offsets }
	}

	/// The values it stands for.
	pub fn values(&self) -> Vec<f32> {
		self.values.dequantize()
	}

	fn codes(&self) -> &[u8] {
		&self.values.codes
	}

	fn scales(&self) -> &[f32] {
		&self.values.scales
	}
}

/// `w · x` for an int8 weight row (`codes` as stored, two's complement in `u8`, and one scale
/// per block) and a quantised row of the same length.
pub fn dot(codes: &[u8], scales: &[f32], x: &QuantizedRow) -> f32 {
	assert!(codes.len() == x.values.len && scales.len() * BLOCK >= codes.len());
	#[cfg(target_arch = "x86_64")]
	{
		if std::arch::is_x86_feature_detected!("avx512vnni")
			&& std::arch::is_x86_feature_detected!("avx512bw")
		{
			// SAFETY: the CPU has the features, and the lengths were checked above.
			return unsafe { x86::dot_vnni(codes, scales, x) };
		}
		if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
		{
			// SAFETY: as above.
			return unsafe { x86::dot_avx2(codes, scales, x) };
		}
	}
	dot_scalar(codes, scales, x)
}

fn dot_scalar(codes: &[u8], scales: &[f32], x: &QuantizedRow) -> f32 {
	let blocks = codes.chunks_exact(BLOCK).zip(x.codes().chunks_exact(BLOCK));
	blocks
		.zip(scales.iter().zip(x.scales()))
		.map(|((w, x), (ws, xs))| {
			let sum: i32 = w.iter().zip(x).map(|(&w, &x)| w as i8 as i32 * x as i8 as i32).sum();
			sum as f32 * (ws * xs)
		})
		.sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
	use super::{QuantizedRow, BLOCK};
	use std::arch::x86_64::*;

	/// One block is one 64-byte register: `vpdpbusd` multiplies unsigned by signed bytes, so
	/// the weights are made unsigned by flipping their top bit (`w + 128`), and the extra
	/// `128 · Σ x` is subtracted from lane 0 before the block's lanes are scaled.
	#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
	pub(super) unsafe fn dot_vnni(codes: &[u8], scales: &[f32], x: &QuantizedRow) -> f32 {
		let flip = _mm512_set1_epi8(-128);
		let mut total = _mm512_setzero_ps();
		for b in 0..codes.len() / BLOCK {
			let w = _mm512_loadu_si512(codes.as_ptr().add(b * BLOCK).cast());
			let xs = _mm512_loadu_si512(x.codes().as_ptr().add(b * BLOCK).cast());
			let start = _mm512_mask_set1_epi32(_mm512_setzero_si512(), 1, -x.offsets[b]);
			let block = _mm512_dpbusd_epi32(start, _mm512_xor_si512(w, flip), xs);
			let scale = _mm512_set1_ps(*scales.get_unchecked(b) * x.scales()[b]);
			total = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block), scale, total);
		}
		_mm512_reduce_add_ps(total)
	}

	/// Two 32-byte halves a block: `|w|` times `x` with `w`'s sign, in pairs of `i16`
	/// (at most 2 · 127 · 127, so `vpmaddubsw` does not saturate), then pairs of those.
	#[target_feature(enable = "avx2,fma")]
	pub(super) unsafe fn dot_avx2(codes: &[u8], scales: &[f32], x: &QuantizedRow) -> f32 {
		let ones = _mm256_set1_epi16(1);
		let mut total = _mm256_setzero_ps();
		for b in 0..codes.len() / BLOCK {
			let mut block = _mm256_setzero_si256();
			for half in 0..2 {
				let at = b * BLOCK + half * 32;
				let w = _mm256_loadu_si256(codes.as_ptr().add(at).cast());
				let xs = _mm256_loadu_si256(x.codes().as_ptr().add(at).cast());
				let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xs, w));
				block = _mm256_add_epi32(block, _mm256_madd_epi16(pairs, ones));
			}
			let scale = _mm256_set1_ps(*scales.get_unchecked(b) * x.scales()[b]);
			total = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block), scale, total);
		}
		let halves = _mm_add_ps(_mm256_castps256_ps128(total), _mm256_extractf128_ps(total, 1));
		let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
		_mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::{
		quant::{QuantKind, QuantizedMatrix},
		rng::Rng,
	};

	/// Every path gives the exact integer sum of each block; the result is the quantised
	/// values' dot product to float rounding, and within the activations' rounding of the
	/// weights' dot product with `x` itself.
	#[test]
	fn dot_is_the_quantised_values_dot_product() {
		let mut rng = Rng::new(5);
		for n in [64, 576, 1536] {
			let w: Vec<f32> = rng.uniform_vec(n, 0.2);
			let mut x: Vec<f32> = rng.uniform_vec(n, 3.0);
			x[7] = 40.0; // an outlier sets its block's scale
			let weights = QuantizedMatrix::quantize(QuantKind::Int8, &w);
			let row = QuantizedRow::new(&x);
			let (w_hat, x_hat) = (weights.dequantize(), row.values());
			let exact: f64 = w_hat.iter().zip(&x_hat).map(|(a, b)| *a as f64 * *b as f64).sum();
			let ours = dot(&weights.codes, &weights.scales, &row);
			let mut paths = vec![ours, dot_scalar(&weights.codes, &weights.scales, &row)];
			#[cfg(target_arch = "x86_64")]
			if std::arch::is_x86_feature_detected!("avx2")
				&& std::arch::is_x86_feature_detected!("fma")
			{
				// SAFETY: the CPU has the features; the lengths match.
				paths.push(unsafe { x86::dot_avx2(&weights.codes, &weights.scales, &row) });
			}
			for got in paths {
				assert!(
					(got as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()),
					"{n}: {got} vs {exact}"
				);
			}
			// Rounding moves each value by at most half its block's step.
			let bound: f64 = w_hat
				.iter()
				.enumerate()
				.map(|(i, w)| (w.abs() * row.scales()[i / BLOCK] / 2.0) as f64)
				.sum();
			let unrounded: f64 = w_hat.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
			assert!(
				(ours as f64 - unrounded).abs() <= bound + 1e-4,
				"{n}: off by more than {bound}"
			);
		}
		assert_eq!(QuantizedRow::new(&[0.0; 64]).values(), vec![0.0; 64]);
	}
}
