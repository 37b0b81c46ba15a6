//! Fused CPU kernels with hand-written backward passes, for training speed on CPUs.
//!
//! A profile of the composed decoder (candle ops with a recorded backward) on the benchmark's
//! 4-layer LLaMA spent about a fifth of its time in matrix products and the rest in
//! per-op overhead: a fresh allocation for every intermediate (so the kernel zeroing pages),
//! single-pass elementwise ops, and gradient accumulation. Each op here replaces a chain of
//! those with one pass that has its own backward:
//! - [`linear`]: the frozen product plus the LoRA branch; the frozen weight gets no gradient.
//! - [`norm`]: RMSNorm and LayerNorm over the last dimension, with frozen weights.
//! - [`heads`]: splitting a projection into heads, with the rotary embedding applied.
//! - [`attention`]: causal attention with grouped-query heads, a sliding window and ALiBi,
//!   recomputing the probabilities in the backward pass from the saved log-sum-exp.
//! - [`mlp`]: the SiLU-gated product and GELU, run inside the MLP's output projection.
//! - [`segments`]: each document's part of a packed batch's LoRA gradients, for attribution.
//! - For inference over a quantised base: [`int8`] products with quantised activations,
//!   [`spin`] to split a decoded token's short products over threads that do not sleep between
//!   them, and [`low_rank`] for served adapters' updates.
//! - [`loss`]: the output layer and cross-entropy together, over chunks of positions, so the
//!   `[positions, vocab]` logits never exist at once and prompt positions cost nothing.
//!
//! The model uses them on the CPU and the composed ops elsewhere (candle's CUDA backend has its
//! own fast kernels). Tests check both paths agree on every family, values and gradients.

pub mod attention;
pub mod blas;
pub mod experts;
pub mod gemm;
pub mod heads;
pub mod int8;
pub mod latent;
pub mod linear;
pub mod loss;
pub mod low_rank;
pub mod mlp;
pub mod norm;
pub mod segments;
pub mod spin;
pub mod vector;

use candle_core::{CpuStorage, DType, Device, Layout, Result, Shape, Storage, Tensor};
use gemm::Half;

/// The `f32` values of a CPU storage under `layout`, which must be contiguous.
pub(crate) fn contiguous<'a>(
	storage: &'a CpuStorage,
	layout: &Layout,
	op: &str,
) -> Result<&'a [f32]> {
	match layout.contiguous_offsets() {
		Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
		None => candle_core::bail!("{op}: the input must be contiguous"),
	}
}

/// Runs `f` on the values of `t` (made contiguous if needed), without copying them otherwise.
pub(crate) fn read<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
	let t = t.contiguous()?;
	let (storage, layout) = t.storage_and_layout();
	match &*storage {
		Storage::Cpu(cpu) => f(contiguous(cpu, layout, "cpu kernel")?),
		_ => candle_core::bail!("cpu kernel: the tensor is not on the CPU"),
	}
}

/// Runs `f` on the bits of a bf16 or f16 `t` and its [`Half`] format; `None` for other dtypes.
pub(crate) fn read_half<R>(
	t: &Tensor,
	f: impl FnOnce(&[u16], Half) -> Result<R>,
) -> Result<Option<R>> {
	let half = match t.dtype() {
		DType::BF16 => Half::Bf16,
		DType::F16 => Half::F16,
		_ => return Ok(None),
	};
	let t = t.contiguous()?;
	let (storage, layout) = t.storage_and_layout();
	let Storage::Cpu(cpu) = &*storage else {
		candle_core::bail!("cpu kernel: a 16-bit weight off the CPU")
	};
	let Some((start, end)) = layout.contiguous_offsets() else {
		candle_core::bail!("cpu kernel: the weight must be contiguous")
	};
	let bits: &[u16] = match half {
		Half::Bf16 => half_bits(&cpu.as_slice::<half::bf16>()?[start..end]),
		Half::F16 => half_bits(&cpu.as_slice::<half::f16>()?[start..end]),
	};
	f(bits, half).map(Some)
}

/// 16-bit floats as their bits.
fn half_bits<T: Copy>(values: &[T]) -> &[u16] {
	assert_eq!(std::mem::size_of::<T>(), 2);
	// SAFETY: only called on `half::bf16` and `half::f16`, transparent `u16`s.
	unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len()) }
}

/// The start of `c`, shared by the threads that write its disjoint blocks.
#[derive(Clone, Copy)]
pub(crate) struct SharedOutput(*mut f32);

// SAFETY: the pointer is only offset and handed to kernels that each write their own
// disjoint part of the output.
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
	/// The element `offset` values in. A method, so closures capture the wrapper rather than
	/// the bare pointer.
	pub(crate) fn at(self, offset: usize) -> *mut f32 {
		self.0.wrapping_add(offset)
	}
}

/// A CPU tensor of `values`.
pub(crate) fn tensor(values: Vec<f32>, shape: impl Into<Shape>) -> Result<Tensor> {
	Tensor::from_vec(values, shape, &Device::Cpu)
}

/// Rows per parallel task: enough work to outweigh a task's cost.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
	(16_384 / row_len.max(1)).max(1)
}

#[cfg(test)]
mod tests;

/// `values` as the gradient of `t`, or `None` when nothing upstream of `t` trains.
pub(crate) fn gradient(t: &Tensor, values: Vec<f32>) -> Result<Option<Tensor>> {
	if t.track_op() {
		Ok(Some(tensor(values, t.shape())?))
	} else {
		Ok(None)
	}
}

/// Values an op's forward pass keeps for its backward pass (candle calls both through `&self`).
#[derive(Default)]
pub(crate) struct Saved(std::sync::Mutex<Vec<f32>>);

impl Saved {
	fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<f32>>> {
		self.0.lock().map_err(|_| {
			candle_core::Error::Msg("a fused op's saved values were poisoned by a panic".into())
		})
	}

	/// Keeps `values`, replacing what was kept.
	pub(crate) fn put(&self, values: Vec<f32>) -> Result<()> {
		*self.lock()? = values;
		Ok(())
	}

	/// Runs `f` on the kept values.
	pub(crate) fn read<R>(&self, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
		f(&self.lock()?)
	}

	/// Hands the kept values over, leaving nothing kept.
	pub(crate) fn take(&self) -> Result<Vec<f32>> {
		Ok(std::mem::take(&mut *self.lock()?))
	}
}

/// Keeps freed tensor memory in the process for reuse.
///
/// glibc hands blocks over its (adaptive) mmap threshold straight back to the kernel and trims
/// the heap top, so each training step's fresh intermediates fault in zeroed pages again: the
/// profile showed a quarter of the time in page faults. Raising both thresholds keeps the
/// memory of one step for the next; peak RSS is unchanged, since the next step needs it all.
/// One arena for all threads, because tensors freed on one rayon thread are allocated again
/// on another, and each extra arena grew and shrank on its own (12% faster with one).
pub fn keep_freed_memory() {
	#[cfg(all(target_os = "linux", target_env = "gnu"))]
	{
		use std::os::raw::c_int;
		extern "C" {
			fn mallopt(param: c_int, value: c_int) -> c_int;
		}
		const M_TRIM_THRESHOLD: c_int = -1;
		const M_MMAP_THRESHOLD: c_int = -3;
		const M_ARENA_MAX: c_int = -8;
		// SAFETY: mallopt only changes allocator settings. 32 MiB is glibc's largest mmap
		// threshold; bigger blocks still map and unmap.
		unsafe {
			mallopt(M_MMAP_THRESHOLD, 32 << 20);
			mallopt(M_TRIM_THRESHOLD, c_int::MAX);
			mallopt(M_ARENA_MAX, 1);
		}
	}
}

/// Stops candle's own worker threads from spinning while they wait.
///
/// candle's CPU backend runs elementwise ops (here, mostly the sums of gradients in the
/// backward pass) on a pool of its own beside rayon's. After each op, each of its workers spins
/// for 25,000 pauses before sleeping: on two cores that took 9% of the samples of a training
/// step from the kernels, and parking at once made llama-4l steps 5% faster. Call before any
/// tensor op and before other threads start (the pool reads the setting once; setting the
/// environment is only sound while the process has one thread). An explicit
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` is left alone.
pub fn park_idle_candle_workers() {
	const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
	if std::env::var_os(SPIN_LIMIT).is_none() {
		std::env::set_var(SPIN_LIMIT, "0");
	}
}

/// Runs `work` on one of rayon's threads, the pool the kernels split their work over.
///
/// Called from any other thread, each parallel section would leave that thread waiting and
/// rayon's workers spinning against it for the cores whenever it runs the serial parts: a
/// seventh of the time in the profile. The stack is large because candle walks the backward
/// graph recursively, one frame per node.
pub fn run_in_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
	// Fails only when the pool already exists (a second call), which is fine.
	let _ = rayon::ThreadPoolBuilder::new().stack_size(64 << 20).build_global();
	rayon::scope(|_| work())
}
