//! The frozen base's two products on AVX-512: `y = x Wᵀ` forward and `∂x = g W` backward, in
//! f32 on FMA or in bf16 on `vdpbf16ps`.
//!
//! **bf16** (`--compute-dtype bf16`): the base's linear weights are held in bf16 (as
//! LLaMA-Factory and QLoRA compute them), the f32 operand is rounded to bf16, and each
//! `vdpbf16ps` multiplies 16 lanes of bf16 pairs into f32 sums. Adapters, their gradients and
//! the optimiser stay f32.
//!
//! **f32**: the same kernel shape with FMA, for every f32 product of the CPU kernels wherever
//! the CPU has AVX-512 (BLAS's `sgemm`, blocked over all three dimensions, see
//! [`sgemm_serial`]). Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and falls back to old ones on
//! models it does not know (SSE3 "Prescott" on this Xeon, 36 GFLOP/s a core against this
//! kernel's 100+), and a machine may pin it to its AVX2 ones (`OPENBLAS_CORETYPE=Haswell`).
//!
//! The weight is packed per product into panels of [`NR`] columns, each column's values in
//! order along the shared dimension (bf16: in consecutive pairs), so the kernel reads a panel
//! row as three vectors and broadcasts one value (or pair) of each of [`MR`] input rows against
//! them. Packing reads the weight once per product, a small share of its work at training's
//! row counts. The bf16 product splits rows over rayon's threads in chunks of [`MC`].

use rayon::prelude::*;
use std::sync::OnceLock;

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

/// `c = alpha · sums + beta · c` on `rows` rows of `cols` columns.
///
/// # Safety
/// `c` must span `rows` rows of `cols` columns at `c_stride`; with `beta` 0 it is written
/// without being read (it may be uninitialised). Needs AVX-512: always inlined into the
/// kernels, which enable it, so that the sums stay in registers (a call sent them through the
/// stack).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store(
	acc: &[[std::arch::x86_64::__m512; 3]; MR],
	rows: usize,
	c: *mut f32,
	c_stride: usize,
	cols: usize,
	(alpha, beta): (f32, f32),
) {
	use std::arch::x86_64::*;
	let (alpha_v, beta_v) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
	// Lanes past `cols` are masked off; a store with no lanes set touches no memory.
	let masks: [__mmask16; 3] = std::array::from_fn(|v| {
		let lanes = cols.saturating_sub(v * 16).min(16);
		((1u32 << lanes) - 1) as __mmask16
	});
	let row = |r: usize, sums: &[__m512; 3]| {
		for (v, sum) in sums.iter().enumerate() {
			// SAFETY: the masked lanes lie within row `r`'s `cols` columns, the caller's promise.
			unsafe {
				let dst = c.add(r * c_stride + v * 16);
				let mut value = _mm512_mul_ps(*sum, alpha_v);
				if beta != 0.0 {
					value = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(masks[v], dst), beta_v, value);
				}
				_mm512_mask_storeu_ps(dst, masks[v], value);
			}
		}
	};
	// Spelled out row by row: constant indices keep the sums in registers.
	const _: () = assert!(MR == 8);
	row(0, &acc[0]);
	if rows > 1 {
		row(1, &acc[1]);
	}
	if rows > 2 {
		row(2, &acc[2]);
	}
	if rows > 3 {
		row(3, &acc[3]);
	}
	if rows > 4 {
		row(4, &acc[4]);
	}
	if rows > 5 {
		row(5, &acc[5]);
	}
	if rows > 6 {
		row(6, &acc[6]);
	}
	if rows > 7 {
		row(7, &acc[7]);
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
	unsafe { store(&acc, rows, c.as_mut_ptr(), c_stride, cols, (1.0, beta)) }
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
	unsafe { store(&acc, rows, c, c_stride, cols, (alpha, beta)) }
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
}

/// `out[..len]`, grown if need be. What it held before is left: packing overwrites every
/// value the kernel stores, and the rows and columns past a product's edge (garbage) land only
/// in sums that are never stored.
fn packing_buffer(out: &mut Vec<f32>, len: usize) -> &mut [f32] {
	if out.len() < len {
		out.resize(len, 0.0);
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

/// `lines` stored lines of `depth` values each (`src`, `src_stride` apart) into `out` as
/// `[depth][width]` from column 0, line `i` in column `i`: the transposing half of packing.
/// Whole 8 × 8 tiles go through [`transpose_tile`], the edges value by value.
fn transpose_into(
	src: &[f32],
	src_stride: usize,
	(lines, depth): (usize, usize),
	out: &mut [f32],
	width: usize,
) {
	assert!(lines <= width && out.len() >= depth * width);
	assert!(lines == 0 || depth == 0 || src.len() >= (lines - 1) * src_stride + depth);
	let (whole_lines, whole_depth) = (lines / 8 * 8, depth / 8 * 8);
	#[cfg(target_arch = "x86_64")]
	if f32_supported() {
		for line in (0..whole_lines).step_by(8) {
			for kk in (0..whole_depth).step_by(8) {
				// SAFETY: the tile's 8 lines of 8 values lie in `src`, its 8 steps of 8 columns
				// in `out`, asserted above; AVX-512 implies AVX.
				unsafe {
					transpose_tile(
						src.as_ptr().add(line * src_stride + kk),
						src_stride,
						out.as_mut_ptr().add(kk * width + line),
						width,
					)
				}
			}
		}
	}
	let tiled = if cfg!(target_arch = "x86_64") && f32_supported() { whole_depth } else { 0 };
	for line in 0..lines {
		let from = if line < whole_lines { tiled } else { 0 };
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
		let (packed, packed_rows) = &mut *buffers.borrow_mut();
		for first_col in (0..n).step_by(NC) {
			let cols = NC.min(n - first_col);
			for step in (0..k).step_by(KC) {
				let depth = KC.min(k - step);
				let beta = if step == 0 { beta } else { 1.0 };
				let packed = packing_buffer(packed, cols.div_ceil(NR) * depth * NR);
				pack_panels(&b, (first_col, cols), (step, depth), packed);
				for first_row in (0..m).step_by(F32_ROWS) {
					let rows = F32_ROWS.min(m - first_row);
					let packed_rows = packing_buffer(packed_rows, rows.div_ceil(MR) * depth * MR);
					pack_rows(&a, (first_row, rows), (step, depth), packed_rows);
					for (panel, b) in packed.chunks_exact(depth * NR).enumerate() {
						let col = first_col + panel * NR;
						for (block, a) in packed_rows.chunks_exact(depth * MR).enumerate() {
							let row = first_row + block * MR;
							#[cfg(target_arch = "x86_64")]
							// SAFETY: `f32_supported` is the caller's promise; the rows and
							// columns lie in `c`.
							unsafe {
								kernel_f32(
									a,
									depth,
									MR.min(m - row),
									b,
									c.add(row * c_stride + col),
									c_stride,
									NR.min(n - col),
									(alpha, beta),
								)
							};
						}
					}
				}
			}
		}
	});
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
	/// dimension, several row chunks; both layouts of each operand; writing and accumulating;
	/// against the product in f64 of the operands as each kernel reads them (bf16: rounded).
	#[test]
	fn products_match_f64_on_every_edge() {
		let mut rng = Rng::new(3);
		// The last spans several blocks of every dimension of the f32 kernel's blocking.
		let shapes =
			[(1, 1, 1), (7, 50, 33), (9, 48, 64), (130, 97, 71), (64, 16, 2), (200, 800, 400)];
		for (m, out, inp) in shapes {
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
				let run = |c: &mut [f32], accumulate: bool| {
					if in_bf16 {
						let w = Weight::new(&w16[..], out, inp, transposed);
						product_bf16(&a[..m * k], m, w, c, accumulate)
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
