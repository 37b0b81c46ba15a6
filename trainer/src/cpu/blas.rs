//! Single-precision GEMM for the CPU kernels.
//!
//! On a CPU with AVX-512 every product runs on this crate's own kernel ([`super::gemm`]):
//! Debian's OpenBLAS 0.3.21 picks its kernels by CPU model and runs its SSE3 ones on models it
//! does not know (a fourth of the AVX-512 kernel's rate on this Xeon), or its AVX2 ones where
//! `OPENBLAS_CORETYPE=Haswell` pins them. Elsewhere:
//!
//! Products run on OpenBLAS (Debian's `libopenblas-dev`, installed by `scripts/setup.sh`) when
//! the `openblas` feature is on, as it is by default: it ran at 283–321 GFLOP/s here on 2
//! threads against 143–192 for candle's built-in gemm. Without the feature they fall back to the
//! pure-Rust `gemm` crate that candle uses.
//!
//! Every call is single-threaded inside; [`sgemm`] splits a product's rows across rayon's
//! threads, the pool the other kernels use, so the two never compete for the cores. (With
//! OpenBLAS's own threads beside rayon's, a profile showed a third of the time spent yielding.)

use super::SharedOutput;
use rayon::prelude::*;

/// A row-major matrix operand: its values, the distance between rows, and whether the
/// product uses its transpose.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
	/// The stored values.
	pub values: &'a [f32],
	/// Distance between the starts of two stored rows.
	pub row_stride: usize,
	/// Whether the product reads the transpose of what is stored.
	pub transposed: bool,
}

impl<'a> Operand<'a> {
	/// `values` as stored, rows `row_stride` apart.
	pub fn plain(values: &'a [f32], row_stride: usize) -> Self {
		Self { values, row_stride, transposed: false }
	}

	/// The transpose of `values`, stored with rows `row_stride` apart.
	pub fn transposed(values: &'a [f32], row_stride: usize) -> Self {
		Self { values, row_stride, transposed: true }
	}

	/// (row, column) strides of the operand as the product reads it.
	#[cfg(not(feature = "openblas"))]
	fn strides(&self) -> (isize, isize) {
		if self.transposed {
			(1, self.row_stride as isize)
		} else {
			(self.row_stride as isize, 1)
		}
	}
}

/// `c = alpha · a · b + beta · c` for an `[m, k]` by `[k, n]` product into `c` `[m, n]` whose
/// rows are `c_stride` apart, on all of rayon's threads.
///
/// The product is split along its longer side. OpenBLAS packs the whole of the operand that
/// spans the other side in each call, so splitting `m` repacks all of `b` once per thread (and
/// splitting `n` all of `a`): with the output layer's 83 × 50,257 × 768 chunks split by rows,
/// a fifth of a GPT-2 step went to copying the vocabulary matrix.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
	m: usize,
	n: usize,
	k: usize,
	alpha: f32,
	a: Operand,
	b: Operand,
	beta: f32,
	c: &mut [f32],
	c_stride: usize,
) {
	check(m, n, k, &a, &b, c.len(), c_stride);
	// SAFETY: just checked, and `c` is borrowed mutably here.
	unsafe { parallel(m, n, k, alpha, a, b, beta, SharedOutput(c.as_mut_ptr()), c_stride) }
}

/// `alpha · a · b`, `[m, n]`, in a new vector, on all of rayon's threads.
///
/// The memory is not zero-filled first: with `beta = 0` BLAS writes `c` without reading it (the
/// reference BLAS: "when BETA is zero, C need not be set on input"). Zero-filling the outputs
/// of the linear layers was about 4% of a training step.
pub fn sgemm_new(m: usize, n: usize, k: usize, alpha: f32, a: Operand, b: Operand) -> Vec<f32> {
	let mut c = Vec::with_capacity(m * n);
	check(m, n, k, &a, &b, c.capacity(), n);
	// SAFETY: the capacity was checked, nothing reads `c` before the product has written every
	// element of it, and the length is set only after.
	unsafe {
		parallel(m, n, k, alpha, a, b, 0.0, SharedOutput(c.as_mut_ptr()), n);
		c.set_len(m * n);
	}
	c
}

/// # Safety
/// As for [`serial`], with `check` passed for the whole product.
#[allow(clippy::too_many_arguments)]
unsafe fn parallel(
	m: usize,
	n: usize,
	k: usize,
	alpha: f32,
	a: Operand,
	b: Operand,
	beta: f32,
	c: SharedOutput,
	c_stride: usize,
) {
	// Below this many rows (or columns) a part is too small to be worth a thread.
	const MIN_PART: usize = 32;
	let threads = rayon::current_num_threads();
	let column_parts = threads.min(n / MIN_PART);
	if n > m && column_parts > 1 {
		let columns = n.div_ceil(column_parts);
		(0..column_parts).into_par_iter().for_each(|part| {
			let first = part * columns;
			let count = columns.min(n - first);
			let offset = if b.transposed { first * b.row_stride } else { first };
			let b = Operand { values: &b.values[offset..], ..b };
			// SAFETY: each part writes only its own columns `first..first + count` of `c`.
			unsafe { serial(m, count, k, alpha, a, b, beta, c.at(first), c_stride) };
		});
		return;
	}
	let parts = threads.min(m / MIN_PART).max(1);
	if parts == 1 {
		return serial(m, n, k, alpha, a, b, beta, c.at(0), c_stride);
	}
	let rows = m.div_ceil(parts);
	(0..parts).into_par_iter().for_each(|part| {
		let first = part * rows;
		let count = rows.min(m - first);
		let offset = if a.transposed { first } else { first * a.row_stride };
		let a = Operand { values: &a.values[offset..], ..a };
		// SAFETY: each part writes only its own rows `first..first + count` of `c`.
		unsafe { serial(count, n, k, alpha, a, b, beta, c.at(first * c_stride), c_stride) };
	});
}

/// [`sgemm`] on the calling thread only, for kernels that already split their work.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_serial(
	m: usize,
	n: usize,
	k: usize,
	alpha: f32,
	a: Operand,
	b: Operand,
	beta: f32,
	c: &mut [f32],
	c_stride: usize,
) {
	check(m, n, k, &a, &b, c.len(), c_stride);
	// SAFETY: just checked, and `c` is borrowed mutably here.
	unsafe { serial(m, n, k, alpha, a, b, beta, c.as_mut_ptr(), c_stride) }
}

/// # Safety
/// `c` must point at an `[m, n]` block with rows `c_stride` apart that nothing else touches
/// during the call, and `a` and `b` must span the product (see [`check`]).
#[allow(clippy::too_many_arguments)]
unsafe fn serial(
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
	// Products narrower than a vector (an adapter's rank) or with fewer rows than one kernel
	// call (generation's single tokens) stay on BLAS: packing the right operand into 48-column
	// panels pays off only over a few rows and a vector's columns.
	if super::gemm::f32_supported() && n >= super::gemm::MIN_COLUMNS && m >= super::gemm::MIN_ROWS {
		fn operand(o: Operand<'_>) -> super::gemm::Operand<'_> {
			super::gemm::Operand {
				values: o.values,
				row_stride: o.row_stride,
				transposed: o.transposed,
			}
		}
		// SAFETY: the caller's promise, as for the other backends.
		return unsafe {
			super::gemm::sgemm_serial(m, n, k, alpha, operand(a), operand(b), beta, c, c_stride)
		};
	}
	#[cfg(feature = "openblas")]
	{
		openblas::sgemm(m, n, k, alpha, a, b, beta, c, c_stride)
	}
	#[cfg(not(feature = "openblas"))]
	{
		rust_gemm(m, n, k, alpha, a, b, beta, c, c_stride)
	}
}

/// The bounds every caller must respect, checked once here so the unsafe calls stay in bounds.
fn check(m: usize, n: usize, k: usize, a: &Operand, b: &Operand, c_len: usize, c_stride: usize) {
	let extent = |rows: usize, cols: usize, stride: usize| {
		if rows == 0 {
			0
		} else {
			(rows - 1) * stride + cols
		}
	};
	let (a_rows, a_cols) = if a.transposed { (k, m) } else { (m, k) };
	let (b_rows, b_cols) = if b.transposed { (n, k) } else { (k, n) };
	assert!(
		a.values.len() >= extent(a_rows, a_cols, a.row_stride) && a.row_stride >= a_cols,
		"sgemm: a too small"
	);
	assert!(
		b.values.len() >= extent(b_rows, b_cols, b.row_stride) && b.row_stride >= b_cols,
		"sgemm: b too small"
	);
	assert!(c_len >= extent(m, n, c_stride) && c_stride >= n, "sgemm: c too small");
}

#[cfg(not(feature = "openblas"))]
#[allow(clippy::too_many_arguments)]
unsafe fn rust_gemm(
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
	let (a_rs, a_cs) = a.strides();
	let (b_rs, b_cs) = b.strides();
	// SAFETY: `check` verified every index the strides can reach. The gemm crate computes
	// dst = alpha·dst + beta·lhs·rhs, hence the swapped names, and reads dst only when asked.
	unsafe {
		gemm::gemm(
			m,
			n,
			k,
			c,
			1,
			c_stride as isize,
			beta != 0.0,
			a.values.as_ptr(),
			a_cs,
			a_rs,
			b.values.as_ptr(),
			b_cs,
			b_rs,
			beta,
			alpha,
			false,
			false,
			false,
			gemm::Parallelism::None,
		)
	}
}

#[cfg(feature = "openblas")]
mod openblas {
	use super::Operand;
	use std::os::raw::c_int;

	const ROW_MAJOR: c_int = 101;
	const NO_TRANS: c_int = 111;
	const TRANS: c_int = 112;

	#[link(name = "openblas")]
	extern "C" {
		fn openblas_set_num_threads(threads: c_int);
		fn cblas_sgemm(
			order: c_int,
			trans_a: c_int,
			trans_b: c_int,
			m: c_int,
			n: c_int,
			k: c_int,
			alpha: f32,
			a: *const f32,
			lda: c_int,
			b: *const f32,
			ldb: c_int,
			beta: f32,
			c: *mut f32,
			ldc: c_int,
		);
	}

	static SINGLE_THREADED: std::sync::Once = std::sync::Once::new();

	#[allow(clippy::too_many_arguments)]
	pub(super) unsafe fn sgemm(
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
		// SAFETY: a plain setter; the threads come from rayon instead.
		SINGLE_THREADED.call_once(|| unsafe { openblas_set_num_threads(1) });
		let int = |v: usize| {
			c_int::try_from(v).expect("sgemm: dimension beyond OpenBLAS's 32-bit interface")
		};
		let trans = |t: bool| if t { TRANS } else { NO_TRANS };
		// SAFETY: `super::check` verified the extents; OpenBLAS reads a and b and writes c only.
		unsafe {
			cblas_sgemm(
				ROW_MAJOR,
				trans(a.transposed),
				trans(b.transposed),
				int(m),
				int(n),
				int(k),
				alpha,
				a.values.as_ptr(),
				int(a.row_stride.max(1)),
				b.values.as_ptr(),
				int(b.row_stride.max(1)),
				beta,
				c,
				int(c_stride.max(1)),
			)
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn naive(m: usize, n: usize, k: usize, a: &[f32], ta: bool, b: &[f32], tb: bool) -> Vec<f32> {
		let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
		let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
		(0..m * n).map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum()).collect()
	}

	#[test]
	fn both_paths_match_a_naive_product_for_every_transpose() {
		// Tall, wide and near square, so both the row and the column split run.
		for (m, n, k) in [(70, 5, 9), (5, 70, 9), (80, 90, 7)] {
			let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
			let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
			for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
				let want = naive(m, n, k, &a, ta, &b, tb);
				let op_a =
					Operand { values: &a, row_stride: if ta { m } else { k }, transposed: ta };
				let op_b =
					Operand { values: &b, row_stride: if tb { k } else { n }, transposed: tb };
				for serial in [false, true] {
					// beta = 1 on a prefilled c checks accumulation too.
					let mut c = vec![1.0; m * n];
					if serial {
						sgemm_serial(m, n, k, 2.0, op_a, op_b, 1.0, &mut c, n);
					} else {
						sgemm(m, n, k, 2.0, op_a, op_b, 1.0, &mut c, n);
					}
					for (got, want) in c.iter().zip(&want) {
						assert!(
							(got - (1.0 + 2.0 * want)).abs() < 1e-4,
							"{m}×{n}×{k} ta={ta} tb={tb} serial={serial}"
						);
					}
				}
				let fresh = sgemm_new(m, n, k, 2.0, op_a, op_b);
				for (got, want) in fresh.iter().zip(&want) {
					assert!(
						(got - 2.0 * want).abs() < 1e-4,
						"{m}×{n}×{k} ta={ta} tb={tb} into new memory"
					);
				}
			}
		}
	}
}
