//! A DCT perceptual hash: the image in 32×32 grey, its 8×8 lowest frequencies, one bit each
//! for above or below their median. Re-encoding, resizing or small edits move few bits.

use image::{imageops::FilterType, DynamicImage};

const SIZE: usize = 32;
const LOW: usize = 8;

/// The 64-bit perceptual hash of `image`.
pub fn perceptual_hash(image: &DynamicImage) -> u64 {
	let grey = image.resize_exact(SIZE as u32, SIZE as u32, FilterType::Triangle).to_luma32f();
	let pixels: Vec<f32> = grey.pixels().map(|p| p.0[0]).collect();
	// A separable 2-D DCT-II, only for the low frequencies the hash keeps.
	let cosine = |k: usize, n: usize| {
		(std::f32::consts::PI * k as f32 * (2 * n + 1) as f32 / (2 * SIZE) as f32).cos()
	};
	let mut rows = [[0f32; LOW]; SIZE];
	for (y, row) in rows.iter_mut().enumerate() {
		for (u, value) in row.iter_mut().enumerate() {
			*value = (0..SIZE).map(|x| pixels[y * SIZE + x] * cosine(u, x)).sum();
		}
	}
	let mut coefficients = [0f32; LOW * LOW];
	for v in 0..LOW {
		for u in 0..LOW {
			coefficients[v * LOW + u] = (0..SIZE).map(|y| rows[y][u] * cosine(v, y)).sum();
		}
	}
	// The DC term is overall brightness, not structure: leave it out of the median.
	let mut sorted = coefficients[1..].to_vec();
	sorted.sort_by(f32::total_cmp);
	let median = sorted[sorted.len() / 2];
	coefficients
		.iter()
		.enumerate()
		.fold(0u64, |hash, (bit, value)| if *value > median { hash | 1 << bit } else { hash })
}
