//! The frozen half of every linear layer: the base's weight matrix, dense or block-quantised.
//! Training never changes it; the kernels in [`crate::cpu`] read it as stored.

use crate::{
	quant::{QuantKind, QuantizedMatrix},
	Result,
};
use candle_core::{DType, Tensor};
use std::sync::Arc;

/// A frozen weight matrix `[out, in]`.
#[derive(Clone, Debug)]
pub enum FrozenWeight {
	/// Unquantised, on the model's device: `f32`, or bf16 for bf16 compute.
	Dense(Tensor),
	/// Block-quantised, with its `[out, in]` shape.
	Quantized(Arc<QuantizedMatrix>, (usize, usize)),
	/// Several layers' weights stacked by rows, each quantised on its own, for a
	/// [`LinearGroup`]. (A dense group stacks into one [`FrozenWeight::Dense`] instead.)
	Stacked(Vec<FrozenWeight>),
}

impl FrozenWeight {
	/// The weight as a dense `f32` `[out, in]` tensor on `device`.
	pub fn dense(&self, device: &candle_core::Device) -> Result<Tensor> {
		Ok(match self {
			FrozenWeight::Dense(w) if w.dtype() == DType::F32 => w.clone(),
			FrozenWeight::Dense(w) => w.to_dtype(DType::F32)?,
			FrozenWeight::Quantized(q, shape) => Tensor::from_vec(q.dequantize(), *shape, device)?,
			FrozenWeight::Stacked(parts) => {
				let parts = parts.iter().map(|p| p.dense(device)).collect::<Result<Vec<_>>>()?;
				Tensor::cat(&parts, 0)?
			},
		})
	}

	/// The weight as stored where it is one tensor (`f32`, bf16 or f16), else
	/// [`FrozenWeight::dense`].
	pub fn stored(&self, device: &candle_core::Device) -> Result<Tensor> {
		match self {
			FrozenWeight::Dense(w) => Ok(w.clone()),
			other => other.dense(device),
		}
	}

	/// The weight's `f32` values, row-major, dequantised where stored quantised.
	pub fn dequantized_values(&self) -> Result<Vec<f32>> {
		Ok(match self {
			FrozenWeight::Dense(w) => dense_values(w)?,
			FrozenWeight::Quantized(q, _) => q.dequantize(),
			FrozenWeight::Stacked(parts) => {
				let mut values = Vec::new();
				for part in parts {
					values.extend(part.dequantized_values()?);
				}
				values
			},
		})
	}

	/// Quantises a dense weight (a no-op for one that already is).
	pub fn quantize(self, kind: QuantKind) -> Result<Self> {
		Ok(match self {
			FrozenWeight::Dense(w) => {
				let values = dense_values(&w)?;
				FrozenWeight::Quantized(
					Arc::new(QuantizedMatrix::quantize(kind, &values)),
					w.dims2()?,
				)
			},
			FrozenWeight::Stacked(parts) => FrozenWeight::Stacked(
				parts.into_iter().map(|p| p.quantize(kind)).collect::<Result<_>>()?,
			),
			quantized => quantized,
		})
	}

	/// `[out, in]`.
	pub fn shape(&self) -> Result<(usize, usize)> {
		Ok(match self {
			FrozenWeight::Dense(w) => w.dims2()?,
			FrozenWeight::Quantized(_, shape) => *shape,
			FrozenWeight::Stacked(parts) => {
				let mut rows = 0;
				let mut width = 0;
				for part in parts {
					let (out, in_dim) = part.shape()?;
					rows += out;
					width = in_dim;
				}
				(rows, width)
			},
		})
	}

	/// Bytes the weight occupies.
	pub fn bytes(&self) -> usize {
		match self {
			FrozenWeight::Dense(w) => w.elem_count() * w.dtype().size_in_bytes(),
			FrozenWeight::Quantized(q, _) => q.bytes(),
			FrozenWeight::Stacked(parts) => parts.iter().map(FrozenWeight::bytes).sum(),
		}
	}
}

/// `w`'s values as `f32`, row-major.
pub(crate) fn dense_values(w: &Tensor) -> Result<Vec<f32>> {
	Ok(w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}
