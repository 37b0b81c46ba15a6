//! bf16 products on AMX tiles (Intel's Advanced Matrix Extensions, Sapphire Rapids and later):
//! `tdpbf16ps` adds a 16 × 32 bf16 tile times a 32 × 16 one into a 16 × 16 tile of f32 sums.
//! The kernels below (16 or 32 rows by one [`NR`]-column panel) reach 940 GFLOP/s on one
//! core of an AMX Xeon with their operands in L1, 500–570 from L2; so a panel is read 128
//! pairs (24 KiB) at a time by every row block in turn, two row blocks at once. On two cores,
//! 1024-row products of a 768-wide layer ran at 1,270 GFLOP/s (940 when a panel's 384 pairs
//! were read from L2 by 16 rows at a time), 768 × 2048 at 1,000 (890), 2048 × 768 at 1,200
//! (920); GPT-2's layer products ran at 545–580 on the f16 AVX-512 kernel.
//!
//! Rust has no stable AMX intrinsics, so the kernel is inline assembly, and Linux hands a
//! process the tile registers only after `arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`. The weight comes as the f16 kernel's [`Panels`] of bf16 pairs (a
//! tile's row is 16 columns' pairs: a panel's layout), packed once per model where its layer
//! keeps them; `a`'s rows are rounded to bf16 pairs, a block of pairs at a time, and laid
//! out tile by tile.

use super::{parts, Panels, SharedOutput, KC, NR};
use rayon::prelude::*;
use std::{arch::asm, sync::OnceLock};

/// Rows of a tile, and step pairs of one: 16 rows of 64 bytes.
const TILE: usize = 16;
/// Pairs of a panel read by every row block in turn: 24 KiB, kept in L1.
const SUB: usize = 128;

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

/// The tile shapes of [`kernel`] and [`kernel_32`]: all eight tiles 16 rows of 64 bytes (16
/// floats of sums, or 16 bf16 pairs).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
	fn new() -> Self {
		let mut config = [0u8; 64];
		// Palette 1; bytes 16.. are each tile's bytes per row (u16), bytes 48.. its rows.
		config[0] = 1;
		for tile in 0..8 {
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
	// By rows wherever each thread gets two row blocks: split by columns, every thread would
	// round all of `a` and read it from L2 once per panel (1.5 MiB for 1024 rows of 768).
	parts(m, n, 2 * TILE, true).into_par_iter().for_each(|part| {
		// SAFETY: each part writes only its own rows and columns of `c`, which spans `[m, n]`;
		// `supported` was checked above.
		unsafe { part_product(a, panels, part, c, n, accumulate) }
	});
}

thread_local! {
	/// [`part_product`]'s rows of `a` over a block of pairs, as bf16 pairs, and its strip of
	/// sums.
	static SCRATCH: std::cell::Cell<(Vec<u32>, Vec<f32>)> =
		const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Rows `first_row..first_row + rows`, columns `first_col..first_col + cols` of `c` (`n`
/// wide) from the rows of `a` (`k` wide, rounded to bf16 here, a block of pairs at a time)
/// and `panels`, a panel at a time. Whole tiles of sums are stored straight into `c`; the
/// rest (a last row block or panel short of a tile) gather in a strip of the part's rows by
/// [`NR`] columns, copied into `c` once per block of pairs. So does every tile where `c`'s
/// rows lie a multiple of 2 KiB apart (a 2048-wide layer's): stored straight, a tile's 16
/// rows would share one or two sets of L1 and evict each other.
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
	let (blocks, full_blocks) = (rows.div_ceil(TILE), rows / TILE);
	let aliasing = (n * 4).is_multiple_of(2048);
	let (mut a_block, mut strip) = SCRATCH.take();
	// Kept between calls: zero-filling them for each product was 2% of a DeepSeek-V2 step.
	let a_block_len = blocks * TILE * KC.min(pairs).next_multiple_of(TILE);
	a_block.resize(a_block_len.max(a_block.len()), 0);
	strip.resize((blocks * TILE * NR).max(strip.len()), 0.0);
	// A block's last pairs short of a tile, zero-padded.
	let mut tail = [0u32; TILE * NR];
	let config = TileConfig::new();
	// SAFETY: the caller's promise; the config is 64 aligned bytes.
	unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack)) };
	for step in (0..pairs).step_by(KC) {
		let depth = KC.min(pairs - step);
		let whole = depth / TILE * TILE;
		let block = panels.block((first_col, cols), (step, depth));
		// The part's rows over these pairs as bf16 pairs, tile by tile (16 rows of 16 pairs,
		// 1 KiB), each row block's tiles in order; zero-padded to whole tiles.
		let span = depth.next_multiple_of(TILE);
		for r in 0..blocks * TILE {
			let row = match r < rows {
				true => &a[(first_row + r) * k + 2 * step..][..(k - 2 * step).min(2 * depth)],
				false => &[],
			};
			let out = &mut a_block[r / TILE * TILE * span + r % TILE * TILE..];
			assert!(out.len() >= (span / TILE - 1) * TILE * TILE + TILE);
			// SAFETY: AMX-BF16 implies AVX-512 BF16; `out` holds the row's place in each tile.
			unsafe { to_bf16_tiles(row, out.as_mut_ptr(), span / TILE) };
		}
		for (panel, b) in block.chunks_exact(depth * NR).enumerate() {
			let (col, width) = (first_col + panel * NR, NR.min(cols - panel * NR));
			// Whole tiles go straight into `c` unless its rows alias in L1; the rest through
			// the strip, from its row `via_strip`.
			let direct = width == NR && !aliasing;
			let via_strip = if direct { full_blocks * TILE } else { 0 };
			// SAFETY: the caller's part of `c`: `rows` rows of `width` columns from `col`.
			let c_row = |r: usize| unsafe {
				std::slice::from_raw_parts_mut(c.at((first_row + r) * n + col), width)
			};
			// Sums start from zero, or from `c` when adding to it or to an earlier block.
			let fresh = step == 0 && !accumulate;
			if !fresh {
				for (r, sums) in (via_strip..rows).zip(strip.chunks_exact_mut(NR)) {
					sums[..width].copy_from_slice(c_row(r));
				}
			}
			if whole < depth {
				tail[..(depth - whole) * NR].copy_from_slice(&b[whole * NR..]);
			}
			// The panel's pairs `SUB` at a time (24 KiB, kept in L1) across every row block.
			for sub in (0..depth).step_by(SUB) {
				let sub_whole = (sub + SUB).min(whole).saturating_sub(sub);
				let with_tail = sub + SUB >= depth && whole < depth;
				let mut row_block = 0;
				while row_block < blocks {
					let in_c = row_block * TILE < via_strip;
					// Two row blocks at once read the panel half as often.
					let two =
						(row_block + 2) * TILE <= if in_c { via_strip } else { blocks * TILE };
					let count = if two { 2 } else { 1 };
					let a = &a_block[row_block * TILE * span..][..count * TILE * span];
					let (sums, stride) = if in_c {
						(c.at((first_row + row_block * TILE) * n + col), n)
					} else {
						let first = (row_block * TILE - via_strip) * NR;
						(strip[first..][..count * TILE * NR].as_mut_ptr(), NR)
					};
					let kernel = if two { kernel_32 } else { kernel };
					let zero = fresh && sub == 0;
					// SAFETY: the tiles are configured; `a` spans the row blocks' tiles of
					// pairs, and `sums` their rows of `c` or of the strip.
					unsafe {
						let (a, b) = (a.as_ptr(), b.as_ptr().add(sub * NR));
						kernel(a.add(sub * TILE), span, b, sub_whole, sums, stride, zero);
						if with_tail {
							let zero = zero && sub_whole == 0;
							kernel(
								a.add(whole * TILE),
								span,
								tail.as_ptr(),
								TILE,
								sums,
								stride,
								zero,
							);
						}
					}
					row_block += count;
				}
			}
			for (r, sums) in (via_strip..rows).zip(strip.chunks_exact(NR)) {
				c_row(r).copy_from_slice(&sums[..width]);
			}
		}
	}
	// SAFETY: the tiles are configured on this thread.
	unsafe { asm!("tilerelease", options(nostack)) };
	SCRATCH.set((a_block, strip));
}

/// `row` rounded to bf16 (to nearest even) as one tile row of pairs in each of `tiles` tiles
/// from `out`, 256 words apart: pairs `16 t..16 t + 16` at `out + 256 t`; zero past the row.
///
/// # Safety
/// Needs AVX-512 BF16; `out` must hold the tiles' rows, and `row` at most their 32 · `tiles`
/// values.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn to_bf16_tiles(row: &[f32], out: *mut u32, tiles: usize) {
	use std::arch::x86_64::*;
	let load = |first: usize| {
		let count = row.len().saturating_sub(first).min(16);
		if count == 0 {
			return _mm512_setzero_ps();
		}
		// SAFETY: the lanes masked in lie in `row`; masked-out lanes are neither read nor fault.
		unsafe { _mm512_maskz_loadu_ps(((1u32 << count) - 1) as u16, row.as_ptr().add(first)) }
	};
	for tile in 0..tiles {
		let first = 2 * TILE * tile;
		// The low 16 halves from the second operand.
		let pairs = _mm512_cvtne2ps_pbh(load(first + 16), load(first));
		// SAFETY: the caller's promise: 16 words of the tile's row.
		unsafe {
			_mm512_storeu_si512(
				out.add(tile * TILE * TILE).cast(),
				std::mem::transmute::<__m512bh, __m512i>(pairs),
			)
		};
	}
}

/// `sums` (16 rows of 48, `sums_stride` floats apart) `+=` 16 rows of `a` (their tiles of 16
/// pairs in order, 256 words each) times one panel (`NR` words a pair), over `pairs` pairs (a
/// multiple of 16); with `zero`, `sums` is written rather than added to (with no pairs:
/// zeroed). `span` is the pairs of a row block, for [`kernel_32`]'s second.
///
/// # Safety
/// The tiles must be configured as [`TileConfig`] has them; every row read or written must
/// lie in its buffer.
unsafe fn kernel(
	a: *const u32,
	_span: usize,
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
				a = in(reg) a.add(p * TILE),
				sa = in(reg) TILE * 4,
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

/// [`kernel`] for 32 rows: rows `16..32` of `a` lie `16 · span` words after the first, and of
/// `sums` 16 strides. The panel's first 32 columns take 2 × 2 tiles of sums (each tile of `a`
/// and of the panel serving two products), the last 16 a second pass, so the panel is read
/// once per 32 rows rather than per 16 (940 against 800 GFLOP/s a core, operands in L1).
///
/// # Safety
/// As for [`kernel`].
unsafe fn kernel_32(
	a: *const u32,
	span: usize,
	b: *const u32,
	pairs: usize,
	sums: *mut f32,
	sums_stride: usize,
	zero: bool,
) {
	let (sums_bytes, a_bytes) = (sums_stride * 4, TILE * 4);
	// SAFETY (every block): the caller's promise.
	unsafe {
		let (a_low, sums_low) = (a.add(TILE * span), sums.add(TILE * sums_stride));
		if zero {
			asm!(
				"tilezero tmm0",
				"tilezero tmm1",
				"tilezero tmm2",
				"tilezero tmm3",
				options(nostack)
			);
		} else {
			asm!(
				"tileloadd tmm0, [{c} + {s}*1]",
				"tileloadd tmm1, [{c} + {s}*1 + 64]",
				"tileloadd tmm2, [{d} + {s}*1]",
				"tileloadd tmm3, [{d} + {s}*1 + 64]",
				c = in(reg) sums,
				d = in(reg) sums_low,
				s = in(reg) sums_bytes,
				options(nostack, readonly),
			);
		}
		for p in (0..pairs).step_by(TILE) {
			asm!(
				"tileloadd tmm4, [{a} + {sa}*1]",
				"tileloadd tmm6, [{b} + {sb}*1]",
				"tileloadd tmm7, [{b} + {sb}*1 + 64]",
				"tdpbf16ps tmm0, tmm4, tmm6",
				"tileloadd tmm5, [{l} + {sa}*1]",
				"tdpbf16ps tmm1, tmm4, tmm7",
				"tdpbf16ps tmm2, tmm5, tmm6",
				"tdpbf16ps tmm3, tmm5, tmm7",
				a = in(reg) a.add(p * TILE),
				l = in(reg) a_low.add(p * TILE),
				sa = in(reg) a_bytes,
				b = in(reg) b.add(p * NR),
				sb = in(reg) NR * 4,
				options(nostack, readonly),
			);
		}
		asm!(
			"tilestored [{c} + {s}*1], tmm0",
			"tilestored [{c} + {s}*1 + 64], tmm1",
			"tilestored [{d} + {s}*1], tmm2",
			"tilestored [{d} + {s}*1 + 64], tmm3",
			c = in(reg) sums,
			d = in(reg) sums_low,
			s = in(reg) sums_bytes,
			options(nostack),
		);
		if zero {
			asm!("tilezero tmm0", "tilezero tmm1", options(nostack));
		} else {
			asm!(
				"tileloadd tmm0, [{c} + {s}*1 + 128]",
				"tileloadd tmm1, [{d} + {s}*1 + 128]",
				c = in(reg) sums,
				d = in(reg) sums_low,
				s = in(reg) sums_bytes,
				options(nostack, readonly),
			);
		}
		for p in (0..pairs).step_by(TILE) {
			asm!(
				"tileloadd tmm4, [{a} + {sa}*1]",
				"tileloadd tmm6, [{b} + {sb}*1 + 128]",
				"tileloadd tmm5, [{l} + {sa}*1]",
				"tdpbf16ps tmm0, tmm4, tmm6",
				"tdpbf16ps tmm1, tmm5, tmm6",
				a = in(reg) a.add(p * TILE),
				l = in(reg) a_low.add(p * TILE),
				sa = in(reg) a_bytes,
				b = in(reg) b.add(p * NR),
				sb = in(reg) NR * 4,
				options(nostack, readonly),
			);
		}
		asm!(
			"tilestored [{c} + {s}*1 + 128], tmm0",
			"tilestored [{d} + {s}*1 + 128], tmm1",
			c = in(reg) sums,
			d = in(reg) sums_low,
			s = in(reg) sums_bytes,
			options(nostack),
		);
	}
}
