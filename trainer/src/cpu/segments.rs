//! Per-document gradients of the LoRA parameters from one packed batch.
//!
//! A LoRA product's gradient is a sum over rows: `dB = s · gᵀ (x Aᵀ)` and `dA = s · (g B)ᵀ x`.
//! Split the sum by the document each row belongs to and the parts are each document's share
//! of the batch's gradient; they add up to it exactly. Training-time attribution needs those
//! parts, and getting them this way costs the same products again, on the rows the backward
//! pass already has, instead of one backward pass per document.
//!
//! [`record`] runs a backward pass with the batch's rows assigned to segments; every fused
//! LoRA op then adds each segment's gradient of its adapters' `A` and `B` to the recording,
//! keyed by the variables' tensor ids. Rows of a packed block also reach other documents'
//! rows through attention, as in training, so a part is the gradient at its document's
//! positions, not that of its document's loss alone.

use super::blas::{sgemm, Operand};
use candle_core::TensorId;
use std::{cell::RefCell, collections::HashMap};

/// Consecutive rows of one segment: `rows.start..rows.end` of the op's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRun {
	/// The rows.
	pub rows: std::ops::Range<usize>,
	/// Its segment, below the recording's segment count.
	pub segment: usize,
}

/// Each segment's gradient of every LoRA variable the backward pass reached.
#[derive(Debug, Default)]
pub struct SegmentGradients {
	runs: Vec<SegmentRun>,
	segments: usize,
	/// `[segments, elements]` per variable.
	gradients: HashMap<TensorId, Vec<f32>>,
}

impl SegmentGradients {
	/// Segment `segment`'s gradient of the variable with tensor id `id`, in its layout.
	pub fn get(&self, id: TensorId, segment: usize) -> Option<&[f32]> {
		let all = self.gradients.get(&id)?;
		let len = all.len() / self.segments.max(1);
		all.get(segment * len..(segment + 1) * len)
	}

	/// `segment`'s slice of variable `id`'s gradients, zero until its first part is added.
	fn slot(&mut self, id: TensorId, elements: usize, segment: usize) -> &mut [f32] {
		let all = self.gradients.entry(id).or_insert_with(|| vec![0.0; self.segments * elements]);
		&mut all[segment * elements..(segment + 1) * elements]
	}
}

thread_local! {
	static RECORDING: RefCell<Option<SegmentGradients>> = const { RefCell::new(None) };
}

/// Runs `backward` (a backward pass on this thread) while recording each segment's LoRA
/// gradients, `runs` assigning the rows of every op's input to `segments` segments.
pub fn record<R>(
	runs: Vec<SegmentRun>,
	segments: usize,
	backward: impl FnOnce() -> R,
) -> (R, SegmentGradients) {
	let recording = SegmentGradients { runs, segments, gradients: HashMap::new() };
	RECORDING.with(|cell| *cell.borrow_mut() = Some(recording));
	let result = backward();
	let recording = RECORDING.with(|cell| cell.borrow_mut().take()).unwrap_or_default();
	(result, recording)
}

/// One LoRA branch of a fused op, as the backward pass has it.
pub(crate) struct BranchRows<'a> {
	/// Tensor ids of the branch's `A` `[r, in]` and `B` `[columns, r]`.
	pub ids: (TensorId, TensorId),
	/// `∂L/∂y` on the branch's columns: row `i` at `i · g_stride`.
	pub g: &'a [f32],
	pub g_stride: usize,
	/// The branch's `(m ⊙ x) Aᵀ` and `g B`: row `i` at `i · width`.
	pub xa: &'a [f32],
	pub gb: &'a [f32],
	pub width: usize,
	/// The branch's input `m ⊙ x` `[rows, in]`.
	pub input: &'a [f32],
	pub in_dim: usize,
	pub columns: usize,
	pub rank: usize,
	pub scale: f32,
	/// The batch rows the input's rows were gathered from, if they are not the batch's own.
	pub source_rows: Option<&'a [u32]>,
}

/// The recording's runs mapped onto an input gathered from the batch's `source` rows
/// (ascending): each input row takes its source row's segment.
fn gathered_runs(runs: &[SegmentRun], source: &[u32]) -> Vec<SegmentRun> {
	let mut out: Vec<SegmentRun> = Vec::new();
	for (i, &row) in source.iter().enumerate() {
		let Some(run) = runs.iter().find(|run| run.rows.contains(&(row as usize))) else {
			continue;
		};
		match out.last_mut() {
			Some(last) if last.segment == run.segment && last.rows.end == i => last.rows.end += 1,
			_ => out.push(SegmentRun { rows: i..i + 1, segment: run.segment }),
		}
	}
	out
}

/// Adds each segment's `dA` and `dB` of `branch` to the recording, if one is running.
pub(crate) fn add_branch(branch: BranchRows) {
	RECORDING.with(|cell| {
		let mut cell = cell.borrow_mut();
		let Some(recording) = cell.as_mut() else { return };
		let BranchRows {
			ids,
			g,
			g_stride,
			xa,
			gb,
			width,
			input,
			in_dim,
			columns,
			rank,
			scale,
			source_rows,
		} = branch;
		let runs = match source_rows {
			Some(source) => gathered_runs(&recording.runs, source),
			None => recording.runs.clone(),
		};
		for run in runs {
			let (first, rows) = (run.rows.start, run.rows.len());
			if rows == 0 || (first + rows) * in_dim > input.len() {
				continue;
			}
			sgemm(
				columns,
				rank,
				rows,
				scale,
				Operand::transposed(&g[first * g_stride..], g_stride),
				Operand::plain(&xa[first * width..], width),
				1.0,
				recording.slot(ids.1, columns * rank, run.segment),
				rank,
			);
			sgemm(
				rank,
				in_dim,
				rows,
				scale,
				Operand::transposed(&gb[first * width..], width),
				Operand::plain(&input[first * in_dim..], in_dim),
				1.0,
				recording.slot(ids.0, rank * in_dim, run.segment),
				in_dim,
			);
		}
	});
}

/// Whether a recording is running on this thread.
pub(crate) fn recording() -> bool {
	RECORDING.with(|cell| cell.borrow().is_some())
}
