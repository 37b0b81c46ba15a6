//! The frozen base's two products on AVX-512: `y = x Wᵀ` forward and `∂x = g W` backward, in
//! f32 on FMA or in bf16 on `vdpbf16ps`.
//!
//! **bf16** (`--compute-dtype bf16`): the base's linear weights are held in bf16 (as
//! LLaMA-Factory and QLoRA compute them), the f32 operand is rounded to bf16, and each
//! `vdpbf16ps` multiplies 16 lanes of bf16 pairs into f32 sums. Adapters, their gradients and
//! the optimiser stay f32.
//!
//! **f32**: the same blocking with FMA, used for an f32 base wherever the CPU has AVX-512.
//! Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to old ones on
//! models it does not know (SSE3 "Prescott" on this Xeon, 36 GFLOP/s a core against this
//! kernel's 100+), and a machine may pin it to its AVX2 ones (`OPENBLAS_CORETYPE=Haswell`).
//!
//! The weight is packed per product into panels of [`NR`] columns, each column's values in
//! order along the shared dimension (bf16: in consecutive pairs), so the kernel reads a panel
//! row as three vectors and broadcasts one value (or pair) of each of [`MR`] input rows against
//! them. Packing reads the weight once per product, a small share of its work at training's
//! row counts. Rows are split over rayon's threads in chunks of [`MC`].

use rayon::prelude::*;
use std::sync::OnceLock;

/// Output columns of a panel: three 16-lane vectors.
const NR: usize = 48;
/// Input rows of one kernel call.
const MR: usize = 8;
/// Input rows a task takes.
const MC: usize = 64;

#[cfg(target_arch = "x86_64")]
fn detect(feature: &str) -> bool {
	match feature {
		"avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
		"avx512bf16" => {
			std::arch::is_x86_feature_detected!("avx512f")
				&& std::arch::is_x86_feature_detected!("avx512bf16")
		},
		_ => false,
	}
}

#[cfg(not(target_arch = "x86_64"))]
fn detect(_feature: &str) -> bool {
	false
}

/// Whether this CPU has AVX-512 BF16, checked once.
pub fn bf16_supported() -> bool {
	static SUPPORTED: OnceLock<bool> = OnceLock::new();
	*SUPPORTED.get_or_init(|| detect("avx512bf16"))
}

/// Whether this CPU has AVX-512, checked once.
pub fn f32_supported() -> bool {
	static SUPPORTED: OnceLock<bool> = OnceLock::new();
	*SUPPORTED.get_or_init(|| detect("avx512f"))
}

/// `x` rounded to the nearest bf16 (ties to even), as its bits.
#[inline]
pub fn round(x: f32) -> u16 {
	let bits = x.to_bits();
	((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Two bf16 values as one word, the first in the low half: what `vdpbf16ps` pairs up.
#[inline]
fn pair(low: u16, high: u16) -> u32 {
	low as u32 | (high as u32) << 16
}

/// A product's `[k, n]` right operand: a row-major weight `[out, in]` of `T`, read as its
/// transpose (the forward product, `k = in`) or as stored (the backward one, `k = out`).
#[derive(Clone, Copy)]
pub enum Weight<'a, T> {
	/// `Wᵀ`: `k` is the weight's width.
	Transposed(&'a [T], usize, usize),
	/// `W`: `k` is the weight's height.
	Plain(&'a [T], usize, usize),
}

impl<'a, T> Weight<'a, T> {
	/// `w` `[out, in]`, read as its transpose or as stored.
	pub fn new(w: &'a [T], out: usize, inp: usize, transposed: bool) -> Self {
		if transposed {
			Weight::Transposed(w, out, inp)
		} else {
			Weight::Plain(w, out, inp)
		}
	}
}

impl<T: Copy + Default + Sync> Weight<'_, T> {
	/// `(k, n)` of the operand.
	fn dims(&self) -> (usize, usize) {
		match *self {
			Weight::Transposed(_, out, inp) => (inp, out),
			Weight::Plain(_, out, inp) => (out, inp),
		}
	}

	/// `B[kk][j]`, zero past the edges.
	#[inline]
	fn at(&self, kk: usize, j: usize) -> T {
		match *self {
			Weight::Transposed(w, out, inp) if kk < inp && j < out => w[j * inp + kk],
			Weight::Plain(w, out, inp) if kk < out && j < inp => w[kk * inp + j],
			_ => T::default(),
		}
	}

	/// Panels `[n / NR][depth][NR]` of `cell(self, step, column)`, zero-padded to whole panels.
	fn pack<P: Copy + Default + Send>(
		&self,
		depth: usize,
		cell: impl Fn(&Self, usize, usize) -> P + Sync,
	) -> Vec<P> {
		let n = self.dims().1;
		let mut out = vec![P::default(); n.div_ceil(NR) * depth * NR];
		out.par_chunks_mut(depth * NR).enumerate().for_each(|(panel, out)| {
			let first = panel * NR;
			// Row by row of the stored weight, so reads run along memory.
			match self {
				Weight::Transposed(..) => {
					for jj in 0..NR.min(n - first) {
						for step in 0..depth {
							out[step * NR + jj] = cell(self, step, first + jj);
						}
					}
				},
				Weight::Plain(..) => {
					for step in 0..depth {
						for jj in 0..NR.min(n - first) {
							out[step * NR + jj] = cell(self, step, first + jj);
						}
					}
				},
			}
		});
		out
	}
}

/// `c = a · B`, or `c += a · B` when `accumulate`, for `a` `[m, k]` and `c` `[m, n]`, both
/// row-major, `B` a bf16 weight, on `vdpbf16ps`. Needs [`bf16_supported`].
pub fn product_bf16(a: &[f32], m: usize, weight: Weight<u16>, c: &mut [f32], accumulate: bool) {
	assert!(bf16_supported(), "bf16 products need AVX-512 BF16");
	let (k, _) = weight.dims();
	let pairs = k.div_ceil(2);
	// Each row of `a` as bf16 pairs, an odd width padded with a zero.
	let mut a_pairs = vec![0u32; m * pairs];
	a_pairs.par_chunks_mut(pairs.max(1)).enumerate().for_each(|(row, out)| {
		let row = &a[row * k..(row + 1) * k];
		for (p, word) in out.iter_mut().enumerate() {
			*word = pair(round(row[2 * p]), row.get(2 * p + 1).copied().map_or(0, round));
		}
	});
	let panels = weight.pack(pairs, |w, p, j| pair(w.at(2 * p, j), w.at(2 * p + 1, j)));
	#[cfg(target_arch = "x86_64")]
	drive(
		m,
		weight.dims(),
		&a_pairs,
		pairs,
		&panels,
		c,
		accumulate,
		|a, rows, b, c, ldc, cols, acc| {
			// SAFETY: `bf16_supported` was checked above; `drive` passes in-bounds slices.
			unsafe { kernel_bf16(a, pairs, rows, b, c, ldc, cols, acc) }
		},
	);
}

/// [`product_bf16`] for an f32 weight, on FMA. Needs [`f32_supported`].
pub fn product_f32(a: &[f32], m: usize, weight: Weight<f32>, c: &mut [f32], accumulate: bool) {
	assert!(f32_supported(), "these products need AVX-512");
	let (k, _) = weight.dims();
	let panels = weight.pack(k, |w, kk, j| w.at(kk, j));
	#[cfg(target_arch = "x86_64")]
	drive(m, weight.dims(), a, k, &panels, c, accumulate, |a, rows, b, c, ldc, cols, acc| {
		// SAFETY: `f32_supported` was checked above; `drive` passes in-bounds slices.
		unsafe { kernel_f32(a, k, rows, b, c, ldc, cols, acc) }
	});
}

/// Runs `kernel` over every [`MR`]-row block and panel, row chunks in parallel. `a` holds `m`
/// rows of `depth` values, `panels` `[n / NR][depth][NR]`. The kernel takes `(a's rows from
/// the block's first, rows, panel, c from the block's first cell, c's row stride, columns,
/// accumulate)`.
#[allow(clippy::too_many_arguments)]
fn drive<A: Sync, P: Sync>(
	m: usize,
	(k, n): (usize, usize),
	a: &[A],
	depth: usize,
	panels: &[P],
	c: &mut [f32],
	accumulate: bool,
	kernel: impl Fn(&[A], usize, &[P], &mut [f32], usize, usize, bool) + Sync,
) {
	assert!(a.len() >= m * depth && c.len() >= m * n, "product: operands too short");
	if m == 0 || n == 0 {
		return;
	}
	if k == 0 {
		if !accumulate {
			c[..m * n].fill(0.0);
		}
		return;
	}
	c[..m * n].par_chunks_mut(MC * n).enumerate().for_each(|(chunk, c)| {
		let rows = c.len() / n;
		let a = &a[chunk * MC * depth..];
		for panel in 0..n.div_ceil(NR) {
			let b = &panels[panel * depth * NR..(panel + 1) * depth * NR];
			let cols = NR.min(n - panel * NR);
			for first in (0..rows).step_by(MR) {
				let count = MR.min(rows - first);
				let c = &mut c[first * n + panel * NR..];
				kernel(&a[first * depth..], count, b, c, n, cols, accumulate);
			}
		}
	});
}

/// Stores (or adds) `rows` rows of `cols` columns of the sums into `c`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store(
	acc: &[[std::arch::x86_64::__m512; 3]; MR],
	rows: usize,
	c: &mut [f32],
	c_stride: usize,
	cols: usize,
	accumulate: bool,
) {
	use std::arch::x86_64::*;
	assert!(c.len() >= (rows - 1) * c_stride + cols);
	for (r, acc) in acc.iter().enumerate().take(rows) {
		for (v, sum) in acc.iter().enumerate() {
			let first = v * 16;
			if first >= cols {
				break;
			}
			let mask: __mmask16 =
				if cols - first >= 16 { 0xffff } else { (1 << (cols - first)) - 1 };
			// SAFETY: the masked lanes lie within row `r`'s `cols` columns, asserted above.
			unsafe {
				let dst = c.as_mut_ptr().add(r * c_stride + first);
				let value = if accumulate {
					_mm512_add_ps(*sum, _mm512_maskz_loadu_ps(mask, dst))
				} else {
					*sum
				};
				_mm512_mask_storeu_ps(dst, mask, value);
			}
		}
	}
}

/// `MR` (or `rows`) rows of `c` from `a`'s pair rows (`pairs` words each) and one panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
// Every row's `p`-th pair against one panel row: the index is the point.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn kernel_bf16(
	a: &[u32],
	pairs: usize,
	rows: usize,
	b: &[u32],
	c: &mut [f32],
	c_stride: usize,
	cols: usize,
	accumulate: bool,
) {
	use std::arch::x86_64::*;
	assert!(a.len() >= (rows - 1) * pairs + pairs && b.len() >= pairs * NR);
	let mut acc = [[_mm512_setzero_ps(); 3]; MR];
	// Rows past the last repeat it; their sums are never stored.
	let row: [&[u32]; MR] = std::array::from_fn(|r| &a[r.min(rows - 1) * pairs..]);
	for p in 0..pairs {
		// SAFETY: `b` holds `pairs` rows of `NR` words, asserted above.
		let (b0, b1, b2) = unsafe {
			let at = b.as_ptr().add(p * NR);
			let load = |at: *const u32| {
				std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(at.cast()))
			};
			(load(at), load(at.add(16)), load(at.add(32)))
		};
		for r in 0..MR {
			// SAFETY: a vector of 16 words reinterpreted as 32 bf16 values.
			let both: __m512bh =
				unsafe { std::mem::transmute(_mm512_set1_epi32(row[r][p] as i32)) };
			acc[r][0] = _mm512_dpbf16_ps(acc[r][0], both, b0);
			acc[r][1] = _mm512_dpbf16_ps(acc[r][1], both, b1);
			acc[r][2] = _mm512_dpbf16_ps(acc[r][2], both, b2);
		}
	}
	// SAFETY: the caller's `c` holds `rows` rows of `cols` columns at `c_stride`.
	unsafe { store(&acc, rows, c, c_stride, cols, accumulate) }
}

/// `MR` (or `rows`) rows of `c` from `a`'s rows (`k` values each) and one panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn kernel_f32(
	a: &[f32],
	k: usize,
	rows: usize,
	b: &[f32],
	c: &mut [f32],
	c_stride: usize,
	cols: usize,
	accumulate: bool,
) {
	use std::arch::x86_64::*;
	assert!(a.len() >= (rows - 1) * k + k && b.len() >= k * NR);
	let mut acc = [[_mm512_setzero_ps(); 3]; MR];
	let row: [&[f32]; MR] = std::array::from_fn(|r| &a[r.min(rows - 1) * k..]);
	for kk in 0..k {
		// SAFETY: `b` holds `k` rows of `NR` values, asserted above.
		let (b0, b1, b2) = unsafe {
			let at = b.as_ptr().add(kk * NR);
			(_mm512_loadu_ps(at), _mm512_loadu_ps(at.add(16)), _mm512_loadu_ps(at.add(32)))
		};
		for r in 0..MR {
			let value = _mm512_set1_ps(row[r][kk]);
			acc[r][0] = _mm512_fmadd_ps(value, b0, acc[r][0]);
			acc[r][1] = _mm512_fmadd_ps(value, b1, acc[r][1]);
			acc[r][2] = _mm512_fmadd_ps(value, b2, acc[r][2]);
		}
	}
	// SAFETY: the caller's `c` holds `rows` rows of `cols` columns at `c_stride`.
	unsafe { store(&acc, rows, c, c_stride, cols, accumulate) }
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	fn widen(bits: u16) -> f32 {
		f32::from_bits((bits as u32) << 16)
	}

	#[test]
	fn rounding_is_to_nearest_even() {
		assert_eq!(widen(round(1.0)), 1.0);
		// 1 + 2⁻⁸ lies halfway between 1 and 1 + 2⁻⁷: ties go to the even 1.
		assert_eq!(widen(round(1.0 + 2f32.powi(-8))), 1.0);
		assert_eq!(widen(round(1.0 + 3.0 * 2f32.powi(-8))), 1.0 + 2.0 * 2f32.powi(-7));
		assert_eq!(widen(round(-2.5)), -2.5);
	}

	/// Every edge: rows not a multiple of the kernel's, columns not of a panel's, an odd shared
	/// dimension, several row chunks; both operand layouts; writing and accumulating; against
	/// the product in f64 of the operands as each kernel reads them (bf16: rounded).
	#[test]
	fn products_match_f64_on_every_edge() {
		let mut rng = Rng::new(3);
		for (m, out, inp) in [(1, 1, 1), (7, 50, 33), (9, 48, 64), (130, 97, 71), (64, 16, 2)] {
			let a = rng.uniform_vec(m * out.max(inp), 1.0);
			let w = rng.uniform_vec(out * inp, 1.0);
			let w16: Vec<u16> = w.iter().copied().map(round).collect();
			for (transposed, in_bf16) in
				[(true, false), (false, false), (true, true), (false, true)]
			{
				let supported = if in_bf16 { bf16_supported() } else { f32_supported() };
				if !supported {
					eprintln!("skipped: this CPU lacks the kernel (bf16 {in_bf16})");
					continue;
				}
				let (k, n) = if transposed { (inp, out) } else { (out, inp) };
				let read = |x: f32| if in_bf16 { widen(round(x)) as f64 } else { x as f64 };
				let b = |kk: usize, j: usize| {
					read(if transposed { w[j * inp + kk] } else { w[kk * inp + j] })
				};
				let expected: Vec<f64> = (0..m)
					.flat_map(|i| {
						let a = &a;
						(0..n).map(move |j| (0..k).map(|kk| read(a[i * k + kk]) * b(kk, j)).sum())
					})
					.collect();
				let run = |c: &mut [f32], accumulate: bool| match (in_bf16, transposed) {
					(true, true) => product_bf16(
						&a[..m * k],
						m,
						Weight::Transposed(&w16, out, inp),
						c,
						accumulate,
					),
					(true, false) => {
						product_bf16(&a[..m * k], m, Weight::Plain(&w16, out, inp), c, accumulate)
					},
					(false, true) => {
						product_f32(&a[..m * k], m, Weight::Transposed(&w, out, inp), c, accumulate)
					},
					(false, false) => {
						product_f32(&a[..m * k], m, Weight::Plain(&w, out, inp), c, accumulate)
					},
				};
				let mut c = vec![f32::NAN; m * n];
				run(&mut c, false);
				let mut onto = vec![1.0; m * n];
				run(&mut onto, true);
				for (i, ((c, onto), e)) in c.iter().zip(&onto).zip(&expected).enumerate() {
					let tolerance = 1e-5 * (k as f64).sqrt() * e.abs().max(1.0);
					let case =
						format!("{m}×{k}×{n}, transposed {transposed}, bf16 {in_bf16}: [{i}]");
					assert!((*c as f64 - e).abs() <= tolerance, "{case} {c} vs {e}");
					assert!((*onto as f64 - 1.0 - e).abs() <= tolerance, "{case} accumulated");
				}
			}
		}
	}
}
