//! bf16 products on AMX tiles (Intel's Advanced Matrix Extensions, Sapphire Rapids and later):
//! `tdpbf16ps` adds a 16 × 32 bf16 tile times a 32 × 16 one into a 16 × 16 tile of f32 sums.
//! The kernel below (16 rows by one [`NR`]-column panel) ran at 494 GFLOP/s on one core of
//! an AMX Xeon in a standalone test; on two cores, GPT-2's layer products ran at 1,230–1,250
//! GFLOP/s, against 545–580 on the f16 AVX-512 kernel.
//!
//! Rust has no stable AMX intrinsics, so the kernel is inline assembly, and Linux hands a
//! process the tile registers only after `arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`. The weight comes as the f16 kernel's [`Panels`] of bf16 pairs (a
//! tile's row is 16 columns' pairs: a panel's layout), packed once per model where its layer
//! keeps them; `a`'s rows are rounded to bf16 pairs, and each block of pairs laid side by
//! side for the tiles.

use super::{parts, round, Panels, SharedOutput, KC, NR};
use rayon::prelude::*;
use std::{arch::asm, sync::OnceLock};

/// Rows of a tile, and step pairs of one: 16 rows of 64 bytes.
const TILE: usize = 16;

/// Whether this CPU has AMX-BF16 and Linux lets this process use the tiles, checked (and
/// asked for) once.
pub(super) fn supported() -> bool {
	static SUPPORTED: OnceLock<bool> = OnceLock::new();
	*SUPPORTED.get_or_init(|| cpu_has_amx_bf16() && permitted())
}

/// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24).
fn cpu_has_amx_bf16() -> bool {
	use std::arch::x86_64::__cpuid_count;
	#[allow(unused_unsafe)]
	// SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only where the CPU has it.
	let (max_leaf, edx) = unsafe {
		let max_leaf = __cpuid_count(0, 0).eax;
		(max_leaf, if max_leaf >= 7 { __cpuid_count(7, 0).edx } else { 0 })
	};
	max_leaf >= 7 && edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

/// Asks Linux for the tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`,
/// for every thread of the process); `false` where the kernel refuses or predates AMX.
fn permitted() -> bool {
	const SYS_ARCH_PRCTL: i64 = 158;
	const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
	const XFEATURE_XTILEDATA: i64 = 18;
	let result: i64;
	// SAFETY: a system call that only changes which register state this process may use.
	unsafe {
		asm!(
			"syscall",
			inlateout("rax") SYS_ARCH_PRCTL => result,
			in("rdi") ARCH_REQ_XCOMP_PERM,
			in("rsi") XFEATURE_XTILEDATA,
			lateout("rcx") _,
			lateout("r11") _,
			options(nostack),
		)
	};
	result == 0
}

/// The tile shapes of [`kernel`]: `tmm0`–`tmm2` the sums of three 16-column groups, `tmm3` the
/// rows' pairs, `tmm4`–`tmm6` the panel's; each 16 rows of 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
	fn new() -> Self {
		let mut config = [0u8; 64];
		// Palette 1; bytes 16.. are each tile's bytes per row (u16), bytes 48.. its rows.
		config[0] = 1;
		for tile in 0..7 {
			config[16 + 2 * tile] = 64;
			config[48 + tile] = TILE as u8;
		}
		Self(config)
	}
}

/// `c = a · B`, or `c += a · B` when `accumulate`, for `a` `[m, k]` and `c` `[m, n]`, both
/// row-major, `B` a bf16 weight's [`Panels`]. Needs [`supported`].
pub(super) fn product(a: &[f32], m: usize, panels: &Panels, c: &mut [f32], accumulate: bool) {
	assert!(c.len() >= m * panels.shape.1, "product: operands too short");
	// SAFETY: `c` spans `[m, n]`.
	unsafe { product_into(a, m, panels, SharedOutput(c.as_mut_ptr()), accumulate) }
}

/// [`product`] into `c`, which need not be initialised unless `accumulate`: every value of
/// `[m, n]` is written.
///
/// # Safety
/// `c` must point to `m · n` values that nothing else touches during the call.
pub(super) unsafe fn product_into(
	a: &[f32],
	m: usize,
	panels: &Panels,
	c: SharedOutput,
	accumulate: bool,
) {
	assert!(supported(), "AMX products need AMX-BF16");
	let (k, n) = panels.shape;
	assert!(a.len() >= m * k, "product: operands too short");
	if m == 0 || n == 0 {
		return;
	}
	if k == 0 {
		if !accumulate {
			// SAFETY: the caller's promise.
			unsafe { std::ptr::write_bytes(c.at(0), 0, m * n) };
		}
		return;
	}
	parts(m, n, TILE).into_par_iter().for_each(|part| {
		// SAFETY: each part writes only its own rows and columns of `c`, which spans `[m, n]`;
		// `supported` was checked above.
		unsafe { part_product(a, panels, part, c, n, accumulate) }
	});
}

thread_local! {
	/// [`part_product`]'s rows of `a` over a block of pairs, as bf16 pairs.
	static A_BLOCK: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows `first_row..first_row + rows`, columns `first_col..first_col + cols` of `c` (`n`
/// wide) from the rows of `a` (`k` wide, rounded to bf16 here, a block of pairs at a time)
/// and `panels`. Blocks of 16 rows
/// and one panel are stored straight into `c`; the edge ones (fewer rows or columns than a
/// tile holds) go through scratch rows and are copied in at the end.
///
/// # Safety
/// `c` must span the part, and no other thread touch it; needs [`supported`].
unsafe fn part_product(
	a: &[f32],
	panels: &Panels,
	((first_row, rows), (first_col, cols)): ((usize, usize), (usize, usize)),
	c: SharedOutput,
	n: usize,
	accumulate: bool,
) {
	let k = panels.shape.0;
	let pairs = k.div_ceil(2);
	let (blocks, part_panels) = (rows.div_ceil(TILE), cols.div_ceil(NR));
	let (full_blocks, full_panels) = (rows / TILE, cols / NR);
	let stride = part_panels * NR;
	// The last row block across every panel, and the last panel beside the full row blocks.
	let mut edge_rows = vec![0f32; if full_blocks < blocks { TILE * stride } else { 0 }];
	let mut edge_panel =
		vec![0f32; if full_panels < part_panels { full_blocks * TILE * NR } else { 0 }];
	// Kept between calls: zero-filling it for each product was 2% of a DeepSeek-V2 step.
	let mut a_block = A_BLOCK.take();
	let a_block_len = blocks * TILE * KC.min(pairs).next_multiple_of(TILE);
	if a_block.len() < a_block_len {
		a_block.resize(a_block_len, 0);
	}
	// A block's last pairs short of a tile, zero-padded.
	let mut tail = [0u32; TILE * NR];
	let config = TileConfig::new();
	// SAFETY: the caller's promise; the config is 64 aligned bytes.
	unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack)) };
	// The panels' blocks of `KC` pairs: a panel's (72 KiB) is read by every row block.
	for step in (0..pairs).step_by(KC) {
		let depth = KC.min(pairs - step);
		let whole = depth / TILE * TILE;
		let block = panels.block((first_col, cols), (step, depth));
		// The part's rows over these pairs, as bf16 pairs side by side, so that a tile's 16
		// rows lie 1.5 KiB apart rather than a whole row (100 KiB for the output layer's
		// gradient); zero-padded to whole tiles, in pairs and in rows.
		let span = depth.next_multiple_of(TILE);
		for (r, out) in a_block[..blocks * TILE * span].chunks_exact_mut(span).enumerate() {
			// SAFETY: a word is two halves, the first in its low bytes (little-endian).
			let halves: &mut [u16] =
				unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), 2 * span) };
			let values = if r < rows { (k - 2 * step).min(2 * depth) } else { 0 };
			if values > 0 {
				let row = &a[(first_row + r) * k + 2 * step..][..values];
				// SAFETY: AMX-BF16 implies AVX-512 BF16.
				unsafe { to_bf16(row, &mut halves[..values]) };
			}
			halves[values..].fill(0);
		}
		for (panel, b) in block.chunks_exact(depth * NR).enumerate() {
			if whole < depth {
				tail[..(depth - whole) * NR].copy_from_slice(&b[whole * NR..]);
			}
			for row_block in 0..blocks {
				let a = &a_block[row_block * TILE * span..];
				assert!(a.len() >= TILE * span);
				let (sums, sums_stride, in_c) = if row_block == full_blocks {
					(edge_rows[panel * NR..].as_mut_ptr(), stride, false)
				} else if panel == full_panels {
					(edge_panel[row_block * TILE * NR..].as_mut_ptr(), NR, false)
				} else {
					let at = (first_row + row_block * TILE) * n + first_col + panel * NR;
					(c.at(at), n, true)
				};
				// The first sums of a block start from zero, or from `c` when adding to it.
				let zero = step == 0 && !(in_c && accumulate);
				// SAFETY: the tiles are configured; `a` is bounded above, and the sums' rows
				// lie in the scratch rows or in the caller's part of `c`.
				unsafe {
					let a = a.as_ptr();
					kernel(a, span, b.as_ptr(), whole, sums, sums_stride, zero);
					if whole < depth {
						let zero = zero && whole == 0;
						kernel(a.add(whole), span, tail.as_ptr(), TILE, sums, sums_stride, zero);
					}
				}
			}
		}
	}
	// SAFETY: the tiles are configured on this thread.
	unsafe { asm!("tilerelease", options(nostack)) };
	A_BLOCK.set(a_block);
	let into_c = |row: usize, col: usize, sums: &[f32]| {
		// SAFETY: the caller's part of `c`.
		let c = unsafe {
			std::slice::from_raw_parts_mut(
				c.at((first_row + row) * n + first_col + col),
				sums.len(),
			)
		};
		if accumulate {
			c.iter_mut().zip(sums).for_each(|(c, s)| *c += s);
		} else {
			c.copy_from_slice(sums);
		}
	};
	for (r, sums) in
		edge_rows.chunks_exact(stride.max(1)).take(rows - full_blocks * TILE).enumerate()
	{
		into_c(full_blocks * TILE + r, 0, &sums[..cols]);
	}
	for (r, sums) in edge_panel.chunks_exact(NR).enumerate() {
		into_c(r, full_panels * NR, &sums[..cols - full_panels * NR]);
	}
}

/// `row` rounded to bf16 (to nearest even) into `out`.
///
/// # Safety
/// Needs AVX-512 BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn to_bf16(row: &[f32], out: &mut [u16]) {
	use std::arch::x86_64::*;
	let whole = row.len() / 16 * 16;
	for (from, to) in row[..whole].chunks_exact(16).zip(out.chunks_exact_mut(16)) {
		// SAFETY: 16 values each way.
		unsafe {
			let halves = _mm512_cvtneps_pbh(_mm512_loadu_ps(from.as_ptr()));
			_mm256_storeu_si256(
				to.as_mut_ptr().cast(),
				std::mem::transmute::<__m256bh, __m256i>(halves),
			);
		}
	}
	for (x, half) in row[whole..].iter().zip(&mut out[whole..]) {
		*half = round(*x);
	}
}

/// `sums` (16 rows of 48, `sums_stride` floats apart) `+=` 16 rows of `a` (`a_stride` words
/// apart) times one panel (`NR` words a pair), over `pairs` pairs (a multiple of 16); with
/// `zero`, `sums` is written rather than added to (with no pairs: zeroed).
///
/// # Safety
/// The tiles must be configured as [`TileConfig`] has them; every row read or written must
/// lie in its buffer.
unsafe fn kernel(
	a: *const u32,
	a_stride: usize,
	b: *const u32,
	pairs: usize,
	sums: *mut f32,
	sums_stride: usize,
	zero: bool,
) {
	const _: () = assert!(NR == 3 * TILE);
	let sums_bytes = sums_stride * 4;
	// SAFETY (every block): the caller's promise.
	unsafe {
		if zero {
			asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", options(nostack));
		} else {
			asm!(
				"tileloadd tmm0, [{c} + {s}*1]",
				"tileloadd tmm1, [{c} + {s}*1 + 64]",
				"tileloadd tmm2, [{c} + {s}*1 + 128]",
				c = in(reg) sums,
				s = in(reg) sums_bytes,
				options(nostack, readonly),
			);
		}
		for p in (0..pairs).step_by(TILE) {
			asm!(
				"tileloadd tmm3, [{a} + {sa}*1]",
				"tileloadd tmm4, [{b} + {sb}*1]",
				"tileloadd tmm5, [{b} + {sb}*1 + 64]",
				"tileloadd tmm6, [{b} + {sb}*1 + 128]",
				"tdpbf16ps tmm0, tmm3, tmm4",
				"tdpbf16ps tmm1, tmm3, tmm5",
				"tdpbf16ps tmm2, tmm3, tmm6",
				a = in(reg) a.add(p),
				sa = in(reg) a_stride * 4,
				b = in(reg) b.add(p * NR),
				sb = in(reg) NR * 4,
				options(nostack, readonly),
			);
		}
		asm!(
			"tilestored [{c} + {s}*1], tmm0",
			"tilestored [{c} + {s}*1 + 64], tmm1",
			"tilestored [{c} + {s}*1 + 128], tmm2",
			c = in(reg) sums,
			s = in(reg) sums_bytes,
			options(nostack),
		);
	}
}
