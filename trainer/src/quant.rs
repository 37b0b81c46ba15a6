//! Block-wise quantisation of frozen base weights for QLoRA.
//!
//! - **NF4** (Dettmers et al., *QLoRA*, 2023, §3): each block of 64 weights is scaled by its
//!   absolute maximum and every weight becomes the index of the nearest of 16 NormalFloat
//!   levels, two per byte. 4.5 bits per weight with the `f32` scale.
//! - **Int8**: each block of 64 is scaled by absmax/127 and rounded. 8.5 bits per weight.
//!
//! Weights are dequantised to `f32` right before a matmul and dropped after it, so only one
//! layer's dense copy is alive at a time (see [`crate::linear`]).

/// The 16 NF4 levels, quantiles of N(0, 1) rescaled to [-1, 1]; values from the QLoRA paper's
/// appendix E and bitsandbytes' `functional.py`.
pub const NF4_LEVELS: [f32; 16] = [
	-1.0,
	-0.696_192_8,
	-0.525_073_05,
	-0.394_917_5,
	-0.284_441_38,
	-0.184_773_43,
	-0.091_050_036,
	0.0,
	0.079_580_3,
	0.160_930_2,
	0.246_112_3,
	0.337_915_24,
	0.440_709_83,
	0.562_617,
	0.722_956_84,
	1.0,
];

/// Weights per scale.
pub const BLOCK: usize = 64;

/// The storage formats for frozen weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantKind {
	/// 4-bit NormalFloat.
	Nf4,
	/// 8-bit absmax.
	Int8,
}

impl QuantKind {
	/// Parses `4`/`nf4` or `8`/`int8`.
	pub fn parse(text: &str) -> Option<Self> {
		match text {
			"4" | "nf4" => Some(QuantKind::Nf4),
			"8" | "int8" => Some(QuantKind::Int8),
			_ => None,
		}
	}
}

/// A quantised matrix: codes plus one `f32` scale per block of [`BLOCK`] values.
#[derive(Clone, Debug)]
pub struct QuantizedMatrix {
	/// The format.
	pub kind: QuantKind,
	/// Number of values.
	pub len: usize,
	/// NF4: two 4-bit indices per byte (low nibble first). Int8: one `i8` per byte.
	pub codes: Vec<u8>,
	/// Absmax per block (NF4) or absmax/127 (int8).
	pub scales: Vec<f32>,
}

fn nearest_nf4(x: f32) -> u8 {
	// The levels are sorted: the nearest is on one side of the first level above x.
	let above = NF4_LEVELS.partition_point(|&level| level < x);
	match above {
		0 => 0,
		16 => 15,
		i if (NF4_LEVELS[i] - x) < (x - NF4_LEVELS[i - 1]) => i as u8,
		i => (i - 1) as u8,
	}
}

impl QuantizedMatrix {
	/// Quantises `values`.
	pub fn quantize(kind: QuantKind, values: &[f32]) -> Self {
		let blocks = values.len().div_ceil(BLOCK);
		let mut scales = Vec::with_capacity(blocks);
		let mut codes = match kind {
			QuantKind::Nf4 => vec![0u8; values.len().div_ceil(2)],
			QuantKind::Int8 => vec![0u8; values.len()],
		};
		for (block_index, block) in values.chunks(BLOCK).enumerate() {
			let absmax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
			let base = block_index * BLOCK;
			match kind {
				QuantKind::Nf4 => {
					scales.push(absmax);
					let inv = if absmax > 0.0 { 1.0 / absmax } else { 0.0 };
					for (i, v) in block.iter().enumerate() {
						let code = nearest_nf4(v * inv);
						let at = base + i;
						codes[at / 2] |= code << ((at % 2) * 4);
					}
				},
				QuantKind::Int8 => {
					let scale = absmax / 127.0;
					scales.push(scale);
					let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
					for (i, v) in block.iter().enumerate() {
						codes[base + i] = ((v * inv).round().clamp(-127.0, 127.0) as i8) as u8;
					}
				},
			}
		}
		Self { kind, len: values.len(), codes, scales }
	}

	/// The `f32` values back.
	pub fn dequantize(&self) -> Vec<f32> {
		let mut out = Vec::with_capacity(self.len);
		match self.kind {
			QuantKind::Nf4 => {
				for i in 0..self.len {
					let code = (self.codes[i / 2] >> ((i % 2) * 4)) & 0x0f;
					out.push(NF4_LEVELS[code as usize] * self.scales[i / BLOCK]);
				}
			},
			QuantKind::Int8 => {
				for i in 0..self.len {
					out.push(self.codes[i] as i8 as f32 * self.scales[i / BLOCK]);
				}
			},
		}
		out
	}

	/// Values `start..start + out.len()` into `out`; `start` is a multiple of [`BLOCK`].
	pub fn dequantize_into(&self, start: usize, out: &mut [f32]) {
		debug_assert_eq!(start % BLOCK, 0);
		let scales = &self.scales[start / BLOCK..];
		match self.kind {
			QuantKind::Nf4 => {
				let codes = &self.codes[start / 2..];
				for (i, value) in out.iter_mut().enumerate() {
					let code = (codes[i / 2] >> ((i % 2) * 4)) & 0x0f;
					*value = NF4_LEVELS[code as usize] * scales[i / BLOCK];
				}
			},
			QuantKind::Int8 => {
				let codes = &self.codes[start..start + out.len()];
				for ((block, codes), scale) in
					out.chunks_mut(BLOCK).zip(codes.chunks(BLOCK)).zip(scales)
				{
					block.iter_mut().zip(codes).for_each(|(v, &c)| *v = c as i8 as f32 * scale);
				}
			},
		}
	}

	/// Bytes held (codes and scales).
	pub fn bytes(&self) -> usize {
		self.codes.len() + 4 * self.scales.len()
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	fn gaussian_like(n: usize) -> Vec<f32> {
		// Sum of uniforms: close enough to normal for an error bound.
		let mut rng = Rng::new(3);
		(0..n).map(|_| (0..4).map(|_| rng.next_f32() - 0.5).sum::<f32>() * 0.05).collect()
	}

	#[test]
	fn levels_round_trip_exactly() {
		let q = QuantizedMatrix::quantize(QuantKind::Nf4, &NF4_LEVELS);
		assert_eq!(q.dequantize(), NF4_LEVELS);
	}

	#[test]
	fn error_is_bounded_by_the_level_spacing() {
		let values = gaussian_like(64 * 100 + 17);
		for (kind, bound) in [(QuantKind::Nf4, 0.161), (QuantKind::Int8, 0.5 / 127.0 + 1e-6)] {
			let q = QuantizedMatrix::quantize(kind, &values);
			let back = q.dequantize();
			for (block, (orig, got)) in values.chunks(BLOCK).zip(back.chunks(BLOCK)).enumerate() {
				let absmax = orig.iter().fold(0f32, |m, v| m.max(v.abs()));
				for (o, g) in orig.iter().zip(got) {
					assert!((o - g).abs() <= bound * absmax, "{kind:?} block {block}: {o} -> {g}");
				}
			}
		}
	}

	#[test]
	fn storage_is_a_quarter_or_half_of_f32() {
		let values = gaussian_like(64 * 1000);
		let nf4 = QuantizedMatrix::quantize(QuantKind::Nf4, &values);
		let int8 = QuantizedMatrix::quantize(QuantKind::Int8, &values);
		assert_eq!(nf4.bytes(), 64 * 1000 / 2 + 4 * 1000);
		assert_eq!(int8.bytes(), 64 * 1000 + 4 * 1000);
	}
}
