//! The frozen base's two products on AVX-512: `y = x Wᵀ` forward and `∂x = g W` backward, in
//! f32 on FMA, in f16 on `vfmadd231ph`, or in bf16 on AMX tiles or `vdpbf16ps`.
//!
//! **bf16** (`--compute-dtype bf16`): the base's linear weights are held in bf16 (as
//! LLaMA-Factory and QLoRA compute them) and the f32 operand is rounded to bf16. Where the CPU
//! has AMX ([`amx`]), `tdpbf16ps` multiplies whole 16 × 32 tiles into f32 sums; else each
//! `vdpbf16ps` multiplies 16 lanes of bf16 pairs. Adapters, their gradients and the optimiser
//! stay f32.
//!
//! **f16** (`--compute-dtype f16`): the same pairs on `vfmadd231ph`, summed in f16 over short
//! spans (see [`product_f16`]).
//!
//! **f32**: the same kernel shape with FMA, for every f32 product of the CPU kernels wherever
//! the CPU has AVX-512 (BLAS's `sgemm`, blocked over all three dimensions, see
//! [`sgemm_serial`]). Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to old ones on
//! models it does not know (SSE3 "Prescott" on this Xeon, 36 GFLOP/s a core against this
//! kernel's 100+), and a machine may pin it to its AVX2 ones (`OPENBLAS_CORETYPE=Haswell`).
//!
//! The weight is packed into panels of [`NR`] columns, each column's values in order along
//! the shared dimension (16 bits: in consecutive pairs), so the kernel reads a panel row as
//! three vectors and broadcasts one value (or pair) of each of [`MR`] input rows against them.
//! An f32 weight is packed per product; a 16-bit one once per model, by the layer's
//! [`PanelCache`] (the output layer's products run on a few hundred rows per chunk of the
//! loss, so its ~50,000 columns were packed a dozen times a GPT-2 step).
//! The `vdpbf16ps` product splits rows over rayon's threads in chunks of [`MC`].

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod amx;

use super::SharedOutput;
use rayon::prelude::*;
use std::{mem::MaybeUninit, sync::OnceLock};

/// Output columns of a panel: three 16-lane vectors.
const NR: usize = 48;
/// Input rows of one kernel call.
const MR: usize = 8;
/// The fewest columns and rows of an f32 product worth packing for the kernel. Measured
/// against OpenBLAS on one core here: attention's 32-row products ran twice as fast on the
/// kernel, an adapter's 8-column ones and single rows slower.
pub(crate) const MIN_COLUMNS: usize = 16;
/// See [`MIN_COLUMNS`].
pub(crate) const MIN_ROWS: usize = MR;
/// Input rows a task takes.
const MC: usize = 64;

#[cfg(target_arch = "x86_64")]
fn detect(feature: &str) -> bool {
	match feature {
		"avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
		"avx512fp16" => {
			std::arch::is_x86_feature_detected!("avx512f")
				&& std::arch::is_x86_feature_detected!("avx512bw")
				&& std::arch::is_x86_feature_detected!("avx512fp16")
		},
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

/// Two 16-bit values as one word, the first in the low half: what `vdpbf16ps` pairs up, and
/// what the f16 kernel broadcasts.
#[inline]
fn pair_of(low: u16, high: u16) -> u32 {
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

impl Weight<'_, u16> {
	/// Columns `first..first + cols`, step pairs `pair..pair + pairs` into `out` as panels
	/// `[cols / NR][pairs][NR]` of f16 pairs, for [`blocked`]: each word holds steps `2p` and
	/// `2p + 1` of one column, zero past the last step.
	fn pack_pairs(
		&self,
		(first, cols): (usize, usize),
		(pair, pairs): (usize, usize),
		out: &mut [u32],
	) {
		let (k, _) = self.dims();
		let step = 2 * pair;
		let steps = (2 * pairs).min(k - step);
		for (panel, out) in out.chunks_exact_mut(pairs * NR).enumerate() {
			let first = first + panel * NR;
			let count = NR.min(cols - panel * NR);
			match *self {
				Weight::Transposed(w, _, inp) => {
					// Eight columns at a time as pair rows, then transposed in 8 × 8 tiles.
					let mut lines = [0u32; 8 * KC];
					for group in (0..count).step_by(8) {
						let width = 8.min(count - group);
						for line in 0..width {
							let column = &w[(first + group + line) * inp + step..][..steps];
							let words = &mut lines[line * pairs..][..pairs];
							// Whole pairs in a loop that vectorises, then an odd last step.
							let whole = column.chunks_exact(2);
							if let [last] = whole.remainder() {
								words[steps / 2] = pair_of(*last, 0);
							}
							for (word, two) in words.iter_mut().zip(whole) {
								*word = pair_of(two[0], two[1]);
							}
						}
						transpose_into(&lines, pairs, (width, pairs), &mut out[group..], NR);
					}
				},
				Weight::Plain(w, _, inp) => {
					for (p, out) in out.chunks_exact_mut(NR).enumerate() {
						let even = &w[(step + 2 * p) * inp + first..][..count];
						if 2 * p + 1 < steps {
							let odd = &w[(step + 2 * p + 1) * inp + first..][..count];
							super::vector::pair_halves(&mut out[..count], even, odd);
						} else {
							out.iter_mut().zip(even).for_each(|(word, &e)| *word = pair_of(e, 0));
						}
					}
				},
			}
		}
	}
}

/// A frozen f16 weight's panels for one product, packed once for all of its products rather
/// than in each: [`KC`]-pair blocks in order, each holding the whole width's panels
/// `[n / NR][depth][NR]` as [`Weight::pack_pairs`] writes them, so that every block
/// [`blocked`] asks for is one slice. The same memory again as the weight, per orientation.
pub struct Panels {
	words: Vec<u32>,
	/// `(k, n)` of the product.
	shape: (usize, usize),
}

impl Panels {
	/// `weight`'s panels, packed on rayon's threads.
	pub fn pack(weight: Weight<u16>) -> Self {
		// Panels a task packs.
		const TASK: usize = 8;
		let (k, n) = weight.dims();
		let (pairs, count) = (k.div_ceil(2), n.div_ceil(NR));
		let mut words = vec![0u32; pairs * count * NR];
		for (block, out) in words.chunks_mut((KC * count * NR).max(1)).enumerate() {
			let (pair, depth) = (block * KC, KC.min(pairs - block * KC));
			out.par_chunks_mut(TASK * depth * NR).enumerate().for_each(|(task, out)| {
				let first = task * TASK * NR;
				weight.pack_pairs((first, (TASK * NR).min(n - first)), (pair, depth), out)
			});
		}
		Self { words, shape: (k, n) }
	}

	/// Columns `first..first + cols` over pairs `pair..pair + depth`, as [`blocked`] asks for
	/// them: `first` a multiple of [`NR`], `pair` of [`KC`].
	fn block(&self, (first, cols): (usize, usize), (pair, depth): (usize, usize)) -> &[u32] {
		debug_assert!(first % NR == 0 && pair % KC == 0);
		let count = self.shape.1.div_ceil(NR);
		&self.words[pair * count * NR + first / NR * depth * NR..][..cols.div_ceil(NR) * depth * NR]
	}
}

/// The [`Panels`] of one frozen weight, both orientations (the forward product reads `Wᵀ`, the
/// input's gradient `W`), each packed on its first use. Kept beside the weight by its layer;
/// it serves only the weight it first packed (by tensor id), so a layer whose weight is
/// replaced falls back to packing in each product.
#[derive(Default)]
pub struct PanelCache {
	weight: OnceLock<candle_core::TensorId>,
	transposed: OnceLock<Panels>,
	plain: OnceLock<Panels>,
}

impl PanelCache {
	/// The panels of `weight`, the tensor `id`'s 16-bit values, for a product in `half`: f16,
	/// or bf16 on AMX (the `vdpbf16ps` kernel packs its own); none for another tensor than the
	/// first.
	pub fn panels(
		&self,
		id: candle_core::TensorId,
		half: Half,
		weight: Weight<u16>,
	) -> Option<&Panels> {
		let packs = half == Half::F16 || amx_supported();
		if !packs || *self.weight.get_or_init(|| id) != id {
			return None;
		}
		let slot = match weight {
			Weight::Transposed(..) => &self.transposed,
			Weight::Plain(..) => &self.plain,
		};
		Some(slot.get_or_init(|| Panels::pack(weight)))
	}
}

impl std::fmt::Debug for PanelCache {
	fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
		let packed = |slot: &OnceLock<Panels>| slot.get().is_some();
		f.debug_struct("PanelCache")
			.field("transposed", &packed(&self.transposed))
			.field("plain", &packed(&self.plain))
			.finish()
	}
}

/// `c = a · B`, or `c += a · B` when `accumulate`, for `a` `[m, k]` and `c` `[m, n]`, both
/// row-major, `B` a bf16 weight: on AMX tiles where the CPU has them ([`amx_supported`]),
/// reading `panels` where given (`B`'s packed ahead), else on `vdpbf16ps`. Needs
/// [`Half::supported`].
pub fn product_bf16(
	a: &[f32],
	m: usize,
	weight: Weight<u16>,
	panels: Option<&Panels>,
	c: &mut [f32],
	accumulate: bool,
) {
	#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
	if amx::supported() {
		return match panels {
			Some(panels) => amx::product(a, m, panels, c, accumulate),
			None => amx::product(a, m, &Panels::pack(weight), c, accumulate),
		};
	}
	product_bf16_vector(a, m, weight, c, accumulate)
}

/// Whether bf16 products run on AMX tiles: the CPU has AMX-BF16 and Linux lets this process
/// use the tiles (asked once).
pub fn amx_supported() -> bool {
	#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
	return amx::supported();
	#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
	false
}

/// [`product_bf16`] on `vdpbf16ps`. Needs [`bf16_supported`].
fn product_bf16_vector(a: &[f32], m: usize, weight: Weight<u16>, c: &mut [f32], accumulate: bool) {
	assert!(bf16_supported(), "bf16 products need AVX-512 BF16");
	let (k, _) = weight.dims();
	let pairs = k.div_ceil(2);
	// Each row of `a` as bf16 pairs, an odd width padded with a zero.
	let mut a_pairs = vec![0u32; m * pairs];
	a_pairs.par_chunks_mut(pairs.max(1)).enumerate().for_each(|(row, out)| {
		let row = &a[row * k..(row + 1) * k];
		for (p, word) in out.iter_mut().enumerate() {
			*word = pair_of(round(row[2 * p]), row.get(2 * p + 1).copied().map_or(0, round));
		}
	});
	let panels = weight.pack(pairs, |w, p, j| pair_of(w.at(2 * p, j), w.at(2 * p + 1, j)));
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

/// Step pairs summed in f16 before the sums move to f32: each lane adds 32 products. (At 16,
/// widening the sums took a third of the kernel's time; 32 gained 10–15% on training shapes,
/// and the worst error in the unit test stayed under 2⁻¹⁰ of the terms' magnitudes.)
const F16_SPAN: usize = 32;
/// The largest weight magnitude an f16 base may hold: a span's partial sum, at most
/// `F16_SPAN · 2 · MAX_F16_WEIGHT` with every row scaled below 2, stays under f16's
/// 65,504 with room to spare.
pub const MAX_F16_WEIGHT: f32 = 256.0;

/// A 16-bit format the frozen base's products can run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
	/// bf16 on `vdpbf16ps` ([`product_bf16`]).
	Bf16,
	/// f16 on `vfmadd231ph` ([`product_f16`]).
	F16,
}

impl Half {
	/// Whether this CPU has the format's kernel.
	pub fn supported(self) -> bool {
		match self {
			Half::Bf16 => bf16_supported() || amx_supported(),
			Half::F16 => f16_supported(),
		}
	}

	/// `x` rounded to the format, as its bits.
	pub fn round(self, x: f32) -> u16 {
		match self {
			Half::Bf16 => round(x),
			Half::F16 => round_f16(x),
		}
	}

	/// `c = a · B` (or `c += a · B`) on the format's kernel, the f16 one reading `B`'s
	/// `panels` where they were packed ahead ([`PanelCache::panels`], which has none for bf16).
	/// Needs [`Half::supported`].
	pub fn product(
		self,
		a: &[f32],
		m: usize,
		weight: Weight<u16>,
		panels: Option<&Panels>,
		c: &mut [f32],
		accumulate: bool,
	) {
		match self {
			Half::Bf16 => product_bf16(a, m, weight, panels, c, accumulate),
			Half::F16 => product_f16(a, m, weight, panels, c, accumulate),
		}
	}

	/// `a · B` `[m, n]` in a new vector, as [`Half::product`] computes it. The f16 and AMX
	/// kernels write it without zero-filling it first (zero-filled outputs were 4% of a GPT-2
	/// f16 step, 3% of a DeepSeek-V2 bf16 one, in `memset`).
	pub fn product_new(
		self,
		a: &[f32],
		m: usize,
		weight: Weight<u16>,
		panels: Option<&Panels>,
	) -> Vec<f32> {
		let len = m * weight.dims().1;
		match self {
			#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
			Half::Bf16 if amx::supported() => {
				let packed;
				let panels = match panels {
					Some(panels) => panels,
					None => {
						packed = Panels::pack(weight);
						&packed
					},
				};
				let mut c = Vec::with_capacity(len);
				// SAFETY: as for f16 below.
				unsafe {
					amx::product_into(a, m, panels, SharedOutput(c.as_mut_ptr()), false);
					c.set_len(len);
				}
				c
			},
			Half::Bf16 => {
				let mut c = vec![0.0; len];
				product_bf16(a, m, weight, panels, &mut c, false);
				c
			},
			Half::F16 => {
				let mut c = Vec::with_capacity(len);
				// SAFETY: `c` holds `[m, n]` values; without accumulating, the product writes
				// every one of them before the length is set.
				unsafe {
					product_f16_into(a, m, weight, panels, SharedOutput(c.as_mut_ptr()), false);
					c.set_len(len);
				}
				c
			},
		}
	}
}

/// Whether this CPU has AVX-512 FP16, checked once.
pub fn f16_supported() -> bool {
	static SUPPORTED: OnceLock<bool> = OnceLock::new();
	*SUPPORTED.get_or_init(|| detect("avx512fp16"))
}

/// `x` rounded to the nearest f16, as its bits.
#[inline]
pub fn round_f16(x: f32) -> u16 {
	half::f16::from_f32(x).to_bits()
}

/// `c = a · B`, or `c += a · B` when `accumulate`, for `a` `[m, k]` and `c` `[m, n]`, both
/// row-major, `B` an f16 weight (every magnitude at most [`MAX_F16_WEIGHT`]), on
/// `vfmadd231ph`. Needs [`f16_supported`].
///
/// f16 has 11 bits of precision (bf16 8) but a narrow range, so each row of `a` is first
/// scaled by the power of two that puts its largest magnitude in [1, 2) (undone exactly on the
/// output): gradients of 1e-9 and activations in the thousands keep all their bits. Sums run
/// in f16 for 2 · [`F16_SPAN`] steps (each lane of a sum takes every other step), then add
/// into f32, so rounding grows with 32 products, not `k`.
///
/// `panels`, where given, are `B`'s packed ahead ([`Panels::pack`] of this `weight`): the
/// product then packs only `a`.
pub fn product_f16(
	a: &[f32],
	m: usize,
	weight: Weight<u16>,
	panels: Option<&Panels>,
	c: &mut [f32],
	accumulate: bool,
) {
	assert!(c.len() >= m * weight.dims().1, "product: operands too short");
	// SAFETY: `c` spans `[m, n]` and is borrowed mutably here.
	unsafe { product_f16_into(a, m, weight, panels, SharedOutput(c.as_mut_ptr()), accumulate) }
}

/// [`product_f16`] into `c`.
///
/// # Safety
/// `c` must span `[m, n]` and nothing else may touch it during the call; without `accumulate`
/// every value is written and none read, so it may be uninitialised.
unsafe fn product_f16_into(
	a: &[f32],
	m: usize,
	weight: Weight<u16>,
	panels: Option<&Panels>,
	c: SharedOutput,
	accumulate: bool,
) {
	assert!(f16_supported(), "f16 products need AVX-512 FP16");
	let (k, n) = weight.dims();
	assert!(a.len() >= m * k, "product: operands too short");
	if let Some(panels) = panels {
		assert_eq!(panels.shape, (k, n), "product: panels packed for another shape");
	}
	if m == 0 || n == 0 {
		return;
	}
	if k == 0 {
		if !accumulate {
			// SAFETY: the caller's `c` spans `m · n` values; zero bits are 0.0.
			unsafe { std::ptr::write_bytes(c.at(0), 0, m * n) };
		}
		return;
	}
	// Each row as f16 pairs, an odd width padded with a zero; every word written below.
	let pairs = k.div_ceil(2);
	let mut a_pairs: Vec<u32> = Vec::with_capacity(m * pairs);
	let mut unscale = vec![1f32; m.div_ceil(MR) * MR];
	a_pairs.spare_capacity_mut()[..m * pairs]
		.par_chunks_mut(pairs)
		.zip(unscale.par_iter_mut())
		.enumerate()
		.for_each(|(row, (out, unscale))| {
			let row = &a[row * k..][..k];
			let largest = super::vector::largest_magnitude(row);
			let exponent = if largest > 0.0 && largest.is_finite() {
				largest.log2().floor().clamp(-100.0, 100.0) as i32
			} else {
				0
			};
			*unscale = 2f32.powi(exponent);
			// SAFETY: a word is two halves, the first in its low bytes (little-endian x86).
			let halves: &mut [MaybeUninit<u16>] =
				unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), 2 * pairs) };
			// SAFETY: `f16_supported` was checked above.
			unsafe { to_f16(row, 2f32.powi(-exponent), &mut halves[..k]) };
			if k % 2 == 1 {
				halves[k].write(0);
			}
		});
	// SAFETY: every row's `pairs` words were written above.
	unsafe { a_pairs.set_len(m * pairs) };
	// Split over the threads along the longer side, each part blocked as `sgemm_serial` is:
	// each thread packs only its own columns of the weight (the output layer's product has
	// tens of thousands of columns and a few hundred rows) or its own rows.
	parts(m, n, MR, false).into_par_iter().for_each(|((first_row, rows), (first_col, cols))| {
		let a = &a_pairs[first_row * pairs..];
		let c = c.at(first_row * n + first_col);
		HALF_BUFFERS.with(|buffers| {
			blocked::<u32>(
				(rows, cols, pairs),
				&mut buffers.borrow_mut(),
				|(col, count), steps| panels.map(|p| p.block((first_col + col, count), steps)),
				|(col, count), steps, out| weight.pack_pairs((first_col + col, count), steps, out),
				|(first, rows), (step, depth), out| {
					for (block, out) in out.chunks_exact_mut(depth * MR).enumerate() {
						let lines = MR.min(rows - block * MR);
						let src = &a[(first + block * MR) * pairs + step..];
						transpose_into(src, pairs, (lines, depth), out, MR);
					}
				},
				|block, depth, (row, rows), panel, (col, cols), first_step| {
					let beta = if accumulate || !first_step { 1.0 } else { 0.0 };
					let unscale = std::array::from_fn(|r| unscale[first_row + row + r]);
					#[cfg(target_arch = "x86_64")]
					// SAFETY: `f16_supported` was checked above; the rows and columns lie in
					// this part of `c`, which no other thread writes.
					unsafe {
						kernel_f16(
							block,
							depth,
							rows,
							panel,
							c.add(row * n + col),
							n,
							cols,
							unscale,
							beta,
						)
					}
				},
			)
		})
	});
}

/// An `[m, n]` product's parts for rayon's threads, split along its longer side, or by rows
/// wherever each thread gets `row_multiple` of them when `rows_first`:
/// `((first row, rows), (first column, columns))`, rows in multiples of `row_multiple`,
/// columns of [`NR`].
fn parts(
	m: usize,
	n: usize,
	row_multiple: usize,
	rows_first: bool,
) -> Vec<((usize, usize), (usize, usize))> {
	let threads = rayon::current_num_threads();
	if n > m && !(rows_first && m >= row_multiple * threads) {
		let width = n.div_ceil(threads).next_multiple_of(NR);
		(0..n).step_by(width).map(|first| ((0, m), (first, width.min(n - first)))).collect()
	} else {
		let height = m.div_ceil(threads).next_multiple_of(row_multiple);
		(0..m).step_by(height).map(|first| ((first, height.min(m - first)), (0, n))).collect()
	}
}

/// `row · scale` rounded to f16 into `out`, which it writes whole.
///
/// # Safety
/// Needs AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn to_f16(row: &[f32], scale: f32, out: &mut [MaybeUninit<u16>]) {
	use std::arch::x86_64::*;
	let scale_v = _mm512_set1_ps(scale);
	let whole = row.len() / 16 * 16;
	for (from, to) in row[..whole].chunks_exact(16).zip(out.chunks_exact_mut(16)) {
		// SAFETY: 16 values each way.
		unsafe {
			let x = _mm512_mul_ps(_mm512_loadu_ps(from.as_ptr()), scale_v);
			let halves = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
			_mm256_storeu_si256(to.as_mut_ptr().cast(), halves);
		}
	}
	for (x, half) in row[whole..].iter().zip(&mut out[whole..]) {
		half.write(round_f16(x * scale));
	}
}

/// Runs `kernel` over every [`MR`]-row block and [`NR`]-column panel, row chunks in parallel. `a`
/// holds `m` rows of `depth` values, `panels` `[n / NR][depth][NR]`. The kernel takes `(a's rows from
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

/// `c = alpha · sums + beta · c` on `rows` rows of `cols` columns, row `r` scaled by
/// `alpha[r]`.
///
/// # Safety
/// `c` must span `rows` rows of `cols` columns at `c_stride`; with `beta` 0 it is written
/// without being read (it may be uninitialised). Needs AVX-512: always inlined into the
/// kernels, so that the sums stay in registers (a call sent them through the stack).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store<const V: usize>(
	acc: &[[std::arch::x86_64::__m512; V]; MR],
	rows: usize,
	c: *mut f32,
	c_stride: usize,
	cols: usize,
	(alpha, beta): ([f32; MR], f32),
) {
	use std::arch::x86_64::*;
	let beta_v = _mm512_set1_ps(beta);
	// Lanes past `cols` are masked off; a store with no lanes set touches no memory.
	let masks: [__mmask16; V] = std::array::from_fn(|v| {
		let lanes = cols.saturating_sub(v * 16).min(16);
		((1u32 << lanes) - 1) as __mmask16
	});
	// Spelled out row by row: constant indices keep the sums in registers.
	const _: () = assert!(MR == 8);
	// SAFETY (each row): the caller's promise.
	unsafe {
		let row = |r: usize| (c.add(r * c_stride), alpha[r]);
		store_row(&acc[0], row(0), &masks, beta, beta_v);
		if rows > 1 {
			store_row(&acc[1], row(1), &masks, beta, beta_v);
		}
		if rows > 2 {
			store_row(&acc[2], row(2), &masks, beta, beta_v);
		}
		if rows > 3 {
			store_row(&acc[3], row(3), &masks, beta, beta_v);
		}
		if rows > 4 {
			store_row(&acc[4], row(4), &masks, beta, beta_v);
		}
		if rows > 5 {
			store_row(&acc[5], row(5), &masks, beta, beta_v);
		}
		if rows > 6 {
			store_row(&acc[6], row(6), &masks, beta, beta_v);
		}
		if rows > 7 {
			store_row(&acc[7], row(7), &masks, beta, beta_v);
		}
	}
}

/// One row of [`store`]: `dst = alpha · sums + beta · dst` under `masks`. A function with the
/// feature enabled, so its intrinsics compile inline wherever it lands (a closure in `store`
/// was left uninlined in the trainer's build, and called each intrinsic as a function).
///
/// # Safety
/// The masked lanes must lie in `dst`'s row; needs AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_row<const V: usize>(
	sums: &[std::arch::x86_64::__m512; V],
	(dst, alpha): (*mut f32, f32),
	masks: &[std::arch::x86_64::__mmask16; V],
	beta: f32,
	beta_v: std::arch::x86_64::__m512,
) {
	use std::arch::x86_64::*;
	let alpha_v = _mm512_set1_ps(alpha);
	for (v, sum) in sums.iter().enumerate() {
		// SAFETY: the caller's promise.
		unsafe {
			let dst = dst.add(v * 16);
			let mut value = _mm512_mul_ps(*sum, alpha_v);
			if beta != 0.0 {
				value = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], dst), beta_v, value);
			}
			_mm512_mask_storeu_ps(dst, masks[v], value);
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
	assert!(c.len() >= (rows - 1) * c_stride + cols);
	let beta = if accumulate { 1.0 } else { 0.0 };
	// SAFETY: `c` spans the rows and columns, asserted above.
	unsafe { store(&acc, rows, c.as_mut_ptr(), c_stride, cols, ([1.0; MR], beta)) }
}

/// `pairs` step pairs of one f16 row block `a` `[pairs][MR]` against one f16 pair panel `b`
/// `[pairs][NR]`, summed in f16, then widened and added onto `sums` (f32, split by step
/// parity: `sums[r][2v]` and `sums[r][2v + 1]` hold the low and high halves of sum vector
/// `v`, whose lanes `2j` and `2j + 1` hold column `j`'s even and odd steps). Apart from
/// [`kernel_f16`], so that its 24 f16 sums get the registers to themselves. The f32 sums
/// stay in the caller's memory: returning the f16 sums as an array had each span zero the
/// array with a `memset` call (5% of a GPT-2 step).
///
/// A pair broadcasts as one 32-bit word, on the load ports alone; a 16-bit broadcast takes a
/// shuffle on a port the FMAs need.
///
/// # Safety
/// `a` and `b` must hold `pairs` pairs; needs AVX-512 FP16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
#[inline(never)]
#[allow(clippy::needless_range_loop)]
unsafe fn span_f16(
	a: *const u32,
	b: *const u32,
	pairs: usize,
	sums: &mut std::mem::MaybeUninit<[[std::arch::x86_64::__m512h; 3]; MR]>,
) {
	use std::arch::x86_64::*;
	let mut acc = [[_mm512_setzero_ph(); 3]; MR];
	for p in 0..pairs {
		// SAFETY: the caller's promise.
		unsafe {
			let at = b.add(p * NR);
			let load = |at: *const u32| _mm512_castsi512_ph(_mm512_loadu_si512(at.cast()));
			let (b0, b1, b2) = (load(at), load(at.add(16)), load(at.add(32)));
			let a = a.add(p * MR);
			for r in 0..MR {
				let x = _mm512_castsi512_ph(_mm512_set1_epi32(*a.add(r) as i32));
				acc[r][0] = _mm512_fmadd_ph(x, b0, acc[r][0]);
				acc[r][1] = _mm512_fmadd_ph(x, b1, acc[r][1]);
				acc[r][2] = _mm512_fmadd_ph(x, b2, acc[r][2]);
			}
		}
	}
	sums.write(acc);
}

/// `MR` (or `rows`) rows of `c = unscale · a · panel + beta · c`, from an f16 pair block `a`
/// `[pairs][MR]` (row `r`'s sums scaled by `unscale[r]`) and one f16 pair panel `[pairs][NR]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f16(
	a: &[u32],
	pairs: usize,
	rows: usize,
	b: &[u32],
	c: *mut f32,
	c_stride: usize,
	cols: usize,
	unscale: [f32; MR],
	beta: f32,
) {
	use std::arch::x86_64::*;
	assert!(a.len() >= pairs * MR && b.len() >= pairs * NR && rows <= MR);
	// Sums in f32, still split by step parity: `[column, parity]` across six vectors.
	let mut sums = [[_mm512_setzero_ps(); 6]; MR];
	for start in (0..pairs).step_by(F16_SPAN) {
		let span = F16_SPAN.min(pairs - start);
		let mut acc = std::mem::MaybeUninit::uninit();
		// SAFETY: `a` and `b` hold `pairs` pairs, asserted above; the call writes `acc`.
		let acc = unsafe {
			span_f16(a[start * MR..].as_ptr(), b[start * NR..].as_ptr(), span, &mut acc);
			acc.assume_init()
		};
		for (sums, acc) in sums.iter_mut().zip(&acc) {
			for (v, acc) in acc.iter().enumerate() {
				let bits = _mm512_castph_si512(*acc);
				let low = _mm512_cvtph_ps(_mm512_castsi512_si256(bits));
				let high = _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(bits));
				sums[2 * v] = _mm512_add_ps(sums[2 * v], low);
				sums[2 * v + 1] = _mm512_add_ps(sums[2 * v + 1], high);
			}
		}
	}
	// Each column's two parities added: even lanes of both halves, plus their odd lanes.
	let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
	let mut columns = [[_mm512_setzero_ps(); 3]; MR];
	for (columns, sums) in columns.iter_mut().zip(&sums) {
		for (v, column) in columns.iter_mut().enumerate() {
			let (low, high) = (sums[2 * v], sums[2 * v + 1]);
			*column = _mm512_add_ps(
				_mm512_permutex2var_ps(low, even, high),
				_mm512_permutex2var_ps(low, odd, high),
			);
		}
	}
	// SAFETY: the caller's `c` spans `rows` rows of `cols` columns at `c_stride`.
	unsafe { store(&columns, rows, c, c_stride, cols, (unscale, beta)) }
}

/// `MR` (or `rows`) rows of `c = alpha · a · panel + beta · c`, from packed rows `a`
/// `[k][MR]` and one panel `[k][NR]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn kernel_f32(
	a: &[f32],
	k: usize,
	rows: usize,
	b: &[f32],
	c: *mut f32,
	c_stride: usize,
	cols: usize,
	(alpha, beta): (f32, f32),
) {
	use std::arch::x86_64::*;
	assert!(a.len() >= k * MR && b.len() >= k * NR && rows <= MR);
	let mut acc = [[_mm512_setzero_ps(); 3]; MR];
	let (mut a_at, mut b_at) = (a.as_ptr(), b.as_ptr());
	for _ in 0..k {
		// SAFETY: `a` holds `k` steps of `MR` values and `b` of `NR`, asserted above.
		unsafe {
			let (b0, b1, b2) = (
				_mm512_loadu_ps(b_at),
				_mm512_loadu_ps(b_at.add(16)),
				_mm512_loadu_ps(b_at.add(32)),
			);
			for r in 0..MR {
				let value = _mm512_set1_ps(*a_at.add(r));
				acc[r][0] = _mm512_fmadd_ps(value, b0, acc[r][0]);
				acc[r][1] = _mm512_fmadd_ps(value, b1, acc[r][1]);
				acc[r][2] = _mm512_fmadd_ps(value, b2, acc[r][2]);
			}
			a_at = a_at.add(MR);
			b_at = b_at.add(NR);
		}
	}
	// SAFETY: the caller's `c` spans `rows` rows of `cols` columns at `c_stride`.
	unsafe { store(&acc, rows, c, c_stride, cols, ([alpha; MR], beta)) }
}

/// A row-major f32 operand as [`super::blas`] describes it: values, row stride, transposed.
pub(crate) struct Operand<'a> {
	pub values: &'a [f32],
	pub row_stride: usize,
	pub transposed: bool,
}

/// Shared-dimension steps of one block. A panel's block (`KC · NR` values) is read by every
/// row block of the [`F32_ROWS`] rows in turn; 384 ran best of 128–768 here.
const KC: usize = 384;
/// Rows packed at a time: their `KC`-step block (288 KiB) stays in L2.
const F32_ROWS: usize = 192;
/// Columns packed at a time: their `KC`-step block (1.1 MiB) stays in L2 beside the rows'.
const NC: usize = NR * 16;

thread_local! {
	/// Packing buffers, kept between calls: `B`'s panels and `A`'s rows.
	static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
		std::cell::RefCell::new((Vec::new(), Vec::new()))
	};
	/// The same for f16 products.
	static HALF_BUFFERS: std::cell::RefCell<(Vec<u32>, Vec<u32>)> = const {
		std::cell::RefCell::new((Vec::new(), Vec::new()))
	};
}

/// `out[..len]`, grown if need be. What it held before is left: packing overwrites every
/// value the kernel stores, and the rows and columns past a product's edge (garbage) land only
/// in sums that are never stored.
fn packing_buffer<T: Copy + Default>(out: &mut Vec<T>, len: usize) -> &mut [T] {
	if out.len() < len {
		out.resize(len, T::default());
	}
	&mut out[..len]
}

/// `dst[j · dst_stride + i] = src[i · src_stride + j]` for an 8 × 8 tile.
///
/// # Safety
/// Both tiles must lie in their buffers; needs AVX (implied by AVX-512).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn transpose_tile(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
	use std::arch::x86_64::*;
	// SAFETY: the caller's promise; the shuffles are the textbook 8 × 8 transpose.
	unsafe {
		let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
		let t = [
			_mm256_unpacklo_ps(r[0], r[1]),
			_mm256_unpackhi_ps(r[0], r[1]),
			_mm256_unpacklo_ps(r[2], r[3]),
			_mm256_unpackhi_ps(r[2], r[3]),
			_mm256_unpacklo_ps(r[4], r[5]),
			_mm256_unpackhi_ps(r[4], r[5]),
			_mm256_unpacklo_ps(r[6], r[7]),
			_mm256_unpackhi_ps(r[6], r[7]),
		];
		let u = [
			_mm256_shuffle_ps::<0x44>(t[0], t[2]),
			_mm256_shuffle_ps::<0xee>(t[0], t[2]),
			_mm256_shuffle_ps::<0x44>(t[1], t[3]),
			_mm256_shuffle_ps::<0xee>(t[1], t[3]),
			_mm256_shuffle_ps::<0x44>(t[4], t[6]),
			_mm256_shuffle_ps::<0xee>(t[4], t[6]),
			_mm256_shuffle_ps::<0x44>(t[5], t[7]),
			_mm256_shuffle_ps::<0xee>(t[5], t[7]),
		];
		for i in 0..4 {
			_mm256_storeu_ps(
				dst.add(i * dst_stride),
				_mm256_permute2f128_ps::<0x20>(u[i], u[i + 4]),
			);
			_mm256_storeu_ps(
				dst.add((i + 4) * dst_stride),
				_mm256_permute2f128_ps::<0x31>(u[i], u[i + 4]),
			);
		}
	}
}

/// A value packing moves in 8 × 8 tiles where the CPU has AVX-512.
trait Tiled: Copy {
	/// [`transpose_tile`] for this type.
	///
	/// # Safety
	/// As for [`transpose_tile`], on a CPU with AVX-512.
	unsafe fn tile(src: *const Self, src_stride: usize, dst: *mut Self, dst_stride: usize);
}

impl Tiled for f32 {
	unsafe fn tile(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
		#[cfg(target_arch = "x86_64")]
		// SAFETY: the caller's promise.
		unsafe {
			transpose_tile(src, src_stride, dst, dst_stride)
		}
	}
}

impl Tiled for u32 {
	unsafe fn tile(src: *const u32, src_stride: usize, dst: *mut u32, dst_stride: usize) {
		#[cfg(target_arch = "x86_64")]
		// SAFETY: the caller's promise; the shuffles move 32-bit lanes whatever they hold.
		unsafe {
			transpose_tile(src.cast(), src_stride, dst.cast(), dst_stride)
		}
	}
}

/// `lines` stored lines of `depth` values each (`src`, `src_stride` apart) into `out` as
/// `[depth][width]` from column 0, line `i` in column `i`: the transposing half of packing.
/// Whole 8 × 8 tiles go through [`Tiled::tile`], the edges value by value.
fn transpose_into<T: Tiled>(
	src: &[T],
	src_stride: usize,
	(lines, depth): (usize, usize),
	out: &mut [T],
	width: usize,
) {
	if lines == 0 || depth == 0 {
		return;
	}
	assert!(lines <= width && out.len() >= (depth - 1) * width + lines);
	assert!(src.len() >= (lines - 1) * src_stride + depth);
	let tiles = cfg!(target_arch = "x86_64") && f32_supported();
	let (whole_lines, whole_depth) = if tiles { (lines / 8 * 8, depth / 8 * 8) } else { (0, 0) };
	for line in (0..whole_lines).step_by(8) {
		for kk in (0..whole_depth).step_by(8) {
			// SAFETY: the tile's 8 lines of 8 values lie in `src`, its 8 steps of 8 columns in
			// `out`, asserted above; the CPU has AVX-512.
			unsafe {
				T::tile(
					src.as_ptr().add(line * src_stride + kk),
					src_stride,
					out.as_mut_ptr().add(kk * width + line),
					width,
				)
			}
		}
	}
	for line in 0..lines {
		let from = if line < whole_lines { whole_depth } else { 0 };
		for kk in from..depth {
			out[kk * width + line] = src[line * src_stride + kk];
		}
	}
}

/// Rows `first..first + rows`, steps `step..step + depth` of `a` (`[m, k]` as `Operand` reads
/// it) into `out`, as blocks `[rows / MR][depth][MR]`.
fn pack_rows(
	a: &Operand,
	(first, rows): (usize, usize),
	(step, depth): (usize, usize),
	out: &mut [f32],
) {
	for (block, out) in out.chunks_exact_mut(depth * MR).enumerate() {
		let first = first + block * MR;
		let count = MR.min(rows - block * MR);
		if a.transposed {
			// Step `kk`'s values of the block's rows lie side by side.
			for (kk, cell) in out.chunks_exact_mut(MR).enumerate() {
				let stored = &a.values[(step + kk) * a.row_stride + first..][..count];
				cell[..count].copy_from_slice(stored);
			}
		} else {
			let rows = &a.values[first * a.row_stride + step..];
			transpose_into(rows, a.row_stride, (count, depth), out, MR);
		}
	}
}

/// Columns `first..first + cols`, steps `step..step + depth` of `b` (`[k, n]` as `Operand`
/// reads it) into `out`, as panels `[cols / NR][depth][NR]`.
fn pack_panels(
	b: &Operand,
	(first, cols): (usize, usize),
	(step, depth): (usize, usize),
	out: &mut [f32],
) {
	for (panel, out) in out.chunks_exact_mut(depth * NR).enumerate() {
		let first = first + panel * NR;
		let count = NR.min(cols - panel * NR);
		if b.transposed {
			let columns = &b.values[first * b.row_stride + step..];
			transpose_into(columns, b.row_stride, (count, depth), out, NR);
		} else {
			for (kk, out) in out.chunks_exact_mut(NR).enumerate() {
				out[..count]
					.copy_from_slice(&b.values[(step + kk) * b.row_stride + first..][..count]);
			}
		}
	}
}

/// `c = alpha · a · b + beta · c`, `a` `[m, k]`, `b` `[k, n]`, `c` `[m, n]` with rows
/// `c_stride` apart, on the calling thread: BLAS's `sgemm` on this module's f32 kernel.
/// Needs [`f32_supported`].
///
/// Blocked as GotoBLAS does: [`NC`] columns and [`KC`] steps of `b` packed (L2), then
/// [`F32_ROWS`] rows of `a` over the same steps (L2), then each [`NR`]-column panel's block
/// (L1) against every [`MR`]-row block. Every block after the first of the shared dimension
/// adds onto `c`.
///
/// # Safety
/// `c` must span `[m, n]` at `c_stride` and nothing else may touch it during the call; with
/// `beta` 0 it is only written. The operands must span the product.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_serial(
	m: usize,
	n: usize,
	k: usize,
	alpha: f32,
	a: Operand,
	b: Operand,
	beta: f32,
	c: *mut f32,
	c_stride: usize,
) {
	if m == 0 || n == 0 {
		return;
	}
	if k == 0 {
		for row in 0..m {
			// SAFETY: row `row` of `c` spans `n` values, the caller's promise.
			let row = unsafe { std::slice::from_raw_parts_mut(c.add(row * c_stride), n) };
			row.iter_mut().for_each(|value| *value = if beta == 0.0 { 0.0 } else { beta * *value });
		}
		return;
	}
	BUFFERS.with(|buffers| {
		blocked::<f32>(
			(m, n, k),
			&mut buffers.borrow_mut(),
			|_, _| None,
			|cols, steps, out| pack_panels(&b, cols, steps, out),
			|rows, steps, out| pack_rows(&a, rows, steps, out),
			|block, depth, (row, rows), panel, (col, cols), first_step| {
				let beta = if first_step { beta } else { 1.0 };
				#[cfg(target_arch = "x86_64")]
				// SAFETY: `f32_supported` is the caller's promise; the rows and columns lie in
				// `c`.
				unsafe {
					kernel_f32(
						block,
						depth,
						rows,
						panel,
						c.add(row * c_stride + col),
						c_stride,
						cols,
						(alpha, beta),
					)
				}
			},
		)
	});
}

/// GotoBLAS's loops over an `[m, k]` by `[k, n]` product with [`NR`]-column panels: [`NC`]
/// columns and [`KC`] steps of `b` packed by `pack_panels(columns, steps, out)` (L2), or read
/// from `packed_ahead(columns, steps)` where that has them, then
/// [`F32_ROWS`] rows of `a` over the same steps by `pack_rows(rows, steps, out)` (L2), then
/// each panel's block (L1) against every [`MR`]-row block: `kernel(rows' block, steps, (first
/// row, rows), panel, (first column, columns), whether these are the first steps)`. Ranges
/// are `(first, count)`; `k` is at least 1.
fn blocked<'p, T: Copy + Default + 'p>(
	(m, n, k): (usize, usize, usize),
	(packed, packed_rows): &mut (Vec<T>, Vec<T>),
	packed_ahead: impl Fn((usize, usize), (usize, usize)) -> Option<&'p [T]>,
	pack_panels: impl Fn((usize, usize), (usize, usize), &mut [T]),
	pack_rows: impl Fn((usize, usize), (usize, usize), &mut [T]),
	kernel: impl Fn(&[T], usize, (usize, usize), &[T], (usize, usize), bool),
) {
	for first_col in (0..n).step_by(NC) {
		let cols = NC.min(n - first_col);
		for step in (0..k).step_by(KC) {
			let depth = KC.min(k - step);
			let panels: &[T] = match packed_ahead((first_col, cols), (step, depth)) {
				Some(panels) => panels,
				None => {
					let packed = packing_buffer(packed, cols.div_ceil(NR) * depth * NR);
					pack_panels((first_col, cols), (step, depth), packed);
					packed
				},
			};
			for first_row in (0..m).step_by(F32_ROWS) {
				let rows = F32_ROWS.min(m - first_row);
				let packed_rows = packing_buffer(packed_rows, rows.div_ceil(MR) * depth * MR);
				pack_rows((first_row, rows), (step, depth), packed_rows);
				for (panel, b) in panels.chunks_exact(depth * NR).enumerate() {
					let col = first_col + panel * NR;
					for (block, a) in packed_rows.chunks_exact(depth * MR).enumerate() {
						let row = first_row + block * MR;
						kernel(
							a,
							depth,
							(row, MR.min(m - row)),
							b,
							(col, NR.min(n - col)),
							step == 0,
						);
					}
				}
			}
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	fn widen(bits: u16) -> f32 {
		f32::from_bits((bits as u32) << 16)
	}

	#[test]
	fn a_panel_cache_serves_only_the_weight_it_packed() {
		let bits = vec![round_f16(0.5); 50 * 20];
		let id = || {
			candle_core::Tensor::zeros(1, candle_core::DType::F32, &candle_core::Device::Cpu)
				.unwrap()
				.id()
		};
		let (first, other) = (id(), id());
		let cache = PanelCache::default();
		let forward = Weight::new(&bits[..], 50, 20, true);
		// The `vdpbf16ps` kernel packs its own; AMX reads them.
		assert_eq!(cache.panels(first, Half::Bf16, forward).is_some(), amx_supported());
		assert_eq!(cache.panels(first, Half::F16, forward).unwrap().shape, (20, 50));
		let backward = Weight::new(&bits[..], 50, 20, false);
		assert_eq!(cache.panels(first, Half::F16, backward).unwrap().shape, (50, 20));
		assert!(cache.panels(other, Half::F16, forward).is_none(), "another tensor's");
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
	/// dimension, several row chunks; both layouts of each operand; writing and accumulating;
	/// rows of large and tiny values; against the product in f64 of the operands as each kernel
	/// reads them (bf16 and f16: rounded).
	#[test]
	fn products_match_f64_on_every_edge() {
		let mut rng = Rng::new(3);
		// 200 × 800 × 400 spans several blocks of every dimension of the f32 kernel's blocking;
		// 801 steps end in a block of pairs short of AMX's whole tiles; 512 columns put AMX's
		// output rows 2 KiB apart (its strip of sums), 70 rows leave one part a partial tile.
		let shapes = [
			(1, 1, 1),
			(7, 50, 33),
			(9, 48, 64),
			(130, 97, 71),
			(64, 16, 2),
			(200, 800, 400),
			(20, 60, 801),
			(70, 512, 801),
		];
		for (m, out, inp) in shapes {
			let a = rng.uniform_vec(m * out.max(inp), 1.0);
			let w = rng.uniform_vec(out * inp, 1.0);
			for (transposed, kind) in [true, false]
				.into_iter()
				.flat_map(|t| [None, Some(Half::Bf16), Some(Half::F16)].map(move |h| (t, h)))
			{
				let supported = kind.map_or(f32_supported(), Half::supported);
				if !supported {
					eprintln!("skipped: this CPU lacks the kernel ({kind:?})");
					continue;
				}
				let (k, n) = if transposed { (inp, out) } else { (out, inp) };
				// Rows far from 1, for the f16 kernel's scaling: one of thousands, one of
				// millionths.
				let mut a = a.clone();
				a.iter_mut().take(k).for_each(|x| *x *= 3000.0);
				a.iter_mut().skip(k).take(k).for_each(|x| *x *= 1e-6);
				let read = |x: f32| match kind {
					None => x as f64,
					Some(Half::Bf16) => widen(round(x)) as f64,
					Some(Half::F16) => half::f16::from_bits(round_f16(x)).to_f64(),
				};
				// The f16 kernel rounds each row of `a` at its own scale: in the tolerance.
				let read_a = |x: f32| if kind == Some(Half::F16) { x as f64 } else { read(x) };
				let w16: Vec<u16> = w.iter().map(|&x| kind.map_or(0, |h| h.round(x))).collect();
				let b = |kk: usize, j: usize| {
					read(if transposed { w[j * inp + kk] } else { w[kk * inp + j] })
				};
				// Each cell's sum, and the sum of its terms' magnitudes (f16 rounds its partial
				// sums, so its error scales with those).
				let expected: Vec<(f64, f64)> = (0..m)
					.flat_map(|i| {
						let a = &a;
						(0..n).map(move |j| {
							(0..k)
								.map(|kk| read_a(a[i * k + kk]) * b(kk, j))
								.fold((0.0, 0.0), |(sum, magnitude), term| {
									(sum + term, magnitude + term.abs())
								})
						})
					})
					.collect();
				let run = |c: &mut [f32], accumulate: bool| {
					if let Some(half) = kind {
						let w = Weight::new(&w16[..], out, inp, transposed);
						half.product(&a[..m * k], m, w, None, c, accumulate)
					} else {
						// The left operand transposed too when the weight is: `aᵀ` stored.
						let stored: Vec<f32> = match transposed {
							true => (0..k)
								.flat_map(|kk| (0..m).map(move |i| (kk, i)))
								.map(|(kk, i)| a[i * k + kk])
								.collect(),
							false => a[..m * k].to_vec(),
						};
						let a = match transposed {
							true => Operand { values: &stored, row_stride: m, transposed: true },
							false => Operand { values: &stored, row_stride: k, transposed: false },
						};
						let b = Operand { values: &w, row_stride: inp, transposed };
						let beta = if accumulate { 1.0 } else { 0.0 };
						// SAFETY: `c` is `[m, n]` and the operands span the product.
						unsafe { sgemm_serial(m, n, k, 1.0, a, b, beta, c.as_mut_ptr(), n) }
					}
				};
				let mut c = vec![f32::NAN; m * n];
				run(&mut c, false);
				let mut onto = vec![1.0; m * n];
				run(&mut onto, true);
				let mut results = vec![("", c, onto)];
				// With the weight's panels packed ahead, into a new output (written without
				// zero-filling it): the same words in the same order. bf16 reads panels on AMX.
				if let Some(half) = kind.filter(|&h| h == Half::F16 || amx_supported()) {
					let w = Weight::new(&w16[..], out, inp, transposed);
					let panels = Panels::pack(w);
					let ahead = half.product_new(&a[..m * k], m, w, Some(&panels));
					let mut ahead_onto = vec![1.0; m * n];
					half.product(&a[..m * k], m, w, Some(&panels), &mut ahead_onto, true);
					let bits = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
					assert_eq!(bits(&ahead), bits(&results[0].1), "{m}×{k}×{n}: panels ahead");
					assert_eq!(bits(&ahead_onto), bits(&results[0].2), "{m}×{k}×{n}: onto");
					results.push((" panels ahead", ahead, ahead_onto));
				}
				if kind == Some(Half::Bf16) && amx_supported() && bf16_supported() {
					// `Half::Bf16` ran on AMX tiles: the vector kernel too.
					let w = Weight::new(&w16[..], out, inp, transposed);
					let mut vector = vec![f32::NAN; m * n];
					product_bf16_vector(&a[..m * k], m, w, &mut vector, false);
					let mut vector_onto = vec![1.0; m * n];
					product_bf16_vector(&a[..m * k], m, w, &mut vector_onto, true);
					results.push((" vdpbf16ps", vector, vector_onto));
				}
				for (path, c, onto) in &results {
					for (i, ((c, onto), &(e, magnitude))) in
						c.iter().zip(onto).zip(&expected).enumerate()
					{
						let tolerance = match kind {
							// The input's rounding (2⁻¹¹ of each term) and the f16 partial sums'
							// (measured under 8.6e-4 of the magnitudes' sum on these shapes).
							Some(Half::F16) => 2f64.powi(-9) * magnitude + 1e-6 * (1.0 + e.abs()),
							// f32 sums: a few roundings of 2⁻²⁴ a step, growing as √k.
							_ => {
								2f64.powi(-20) * (k as f64).sqrt() * magnitude
									+ 1e-6 * (1.0 + e.abs())
							},
						};
						let case =
							format!("{m}×{k}×{n}, transposed {transposed}, {kind:?}{path}: [{i}]");
						assert!((*c as f64 - e).abs() <= tolerance, "{case} {c} vs {e}");
						assert!((*onto as f64 - 1.0 - e).abs() <= tolerance, "{case} accumulated");
					}
				}
			}
		}
	}
}
