//! The one configuration the decoder is built from.
//!
//! Every supported checkpoint is a pre-norm decoder-only transformer; the families differ in a
//! handful of switches (norm, positions, attention layout, MLP, biases). [`ModelConfig::from_hf`]
//! reads a Hugging Face `config.json` and hands it to its family's file in [`crate::families`],
//! which sets those switches, so [`crate::model`] has a single code path.

pub use crate::families::Family;
use crate::{Error, Result};
use serde_json::Value;

/// Normalisation layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
	/// Root-mean-square norm with a gain.
	Rms,
	/// LayerNorm with a gain and a bias.
	Layer,
}

/// How positions enter attention.
#[derive(Clone, Debug, PartialEq)]
pub enum Positions {
	/// Rotary embeddings.
	Rope {
		/// The frequency base.
		theta: f64,
		/// How many leading dimensions of each head rotate (the head dimension, or half of it
		/// for ChatGLM).
		rotary_dim: usize,
		/// Rotate adjacent pairs (ChatGLM) rather than the two halves (LLaMA/HF layout).
		interleaved: bool,
		/// LLaMA 3's frequency scaling.
		llama3_scaling: Option<Llama3RopeScaling>,
	},
	/// A learned position-embedding table (GPT-2).
	Learned,
	/// Linear attention biases (BLOOM).
	Alibi,
}

/// LLaMA 3's rotary frequency scaling (`rope_scaling` with `rope_type: "llama3"`): long
/// wavelengths are slowed by `factor`, short ones kept, and the band between blended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3RopeScaling {
	/// How much the longest wavelengths are slowed.
	pub factor: f64,
	/// Wavelengths longer than `original_max_positions / low_freq_factor` are slowed fully.
	pub low_freq_factor: f64,
	/// Wavelengths shorter than `original_max_positions / high_freq_factor` are kept.
	pub high_freq_factor: f64,
	/// The context length the model was pre-trained on.
	pub original_max_positions: usize,
}

/// The feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mlp {
	/// `down(silu(gate(x)) * up(x))` with separate gate and up (LLaMA family).
	GatedSilu,
	/// ChatGLM's `dense_4h_to_h(swiglu(dense_h_to_4h(x)))`, gate and up fused in one matrix.
	FusedGatedSilu,
	/// `proj(gelu_tanh(fc(x)))` (GPT-2, BLOOM).
	GeluTanh,
}

/// How q, k and v are projected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkvLayout {
	/// Three matrices `q_proj`, `k_proj`, `v_proj`.
	Separate,
	/// One matrix whose output is `[q | k | v]` (GPT-2's `c_attn`, ChatGLM's multi-query
	/// `query_key_value` with fewer k/v heads).
	Concatenated,
	/// One matrix whose output is `[head0: q k v | head1: q k v | …]` (BLOOM).
	PerHead,
}

/// Everything the decoder needs, for every family.
#[derive(Clone, Debug)]
pub struct ModelConfig {
	/// The architecture family.
	pub family: Family,
	/// Rows of the embedding matrix.
	pub vocab_size: usize,
	/// Width of the residual stream.
	pub hidden_size: usize,
	/// Width of the feed-forward block.
	pub intermediate_size: usize,
	/// Decoder blocks.
	pub num_layers: usize,
	/// Query heads.
	pub num_heads: usize,
	/// Key/value heads (fewer for grouped-query or multi-query attention).
	pub num_kv_heads: usize,
	/// Width of one head.
	pub head_dim: usize,
	/// The longest sequence the model supports.
	pub max_positions: usize,
	/// Normalisation layers.
	pub norm: Norm,
	/// Their epsilon.
	pub norm_eps: f64,
	/// Position encoding.
	pub positions: Positions,
	/// Feed-forward block.
	pub mlp: Mlp,
	/// Attention projection layout.
	pub qkv: QkvLayout,
	/// Whether q/k/v have a bias.
	pub qkv_bias: bool,
	/// Whether the attention output and the MLP matrices have biases.
	pub dense_bias: bool,
	/// Qwen3's per-head RMSNorm on q and k.
	pub qk_norm: bool,
	/// Mistral's attention window.
	pub sliding_window: Option<usize>,
	/// Whether the output projection is the embedding matrix.
	pub tie_word_embeddings: bool,
	/// BLOOM's LayerNorm right after the embedding.
	pub embedding_norm: bool,
	/// Whether the checkpoint stores linear weights as `[in, out]` (GPT-2's Conv1D).
	pub conv1d_weights: bool,
	/// The end-of-sequence token, if `config.json` names one.
	pub eos_token_id: Option<u32>,
	/// The beginning-of-sequence token, if `config.json` names one.
	pub bos_token_id: Option<u32>,
}

pub(crate) fn field<'a>(json: &'a Value, names: &[&str]) -> Option<&'a Value> {
	names.iter().find_map(|name| json.get(*name).filter(|v| !v.is_null()))
}

pub(crate) fn usize_field(json: &Value, names: &[&'static str]) -> Result<usize> {
	field(json, names).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| Error::Corrupt {
		what: "config.json",
		path: "config.json".into(),
		reason: format!("missing integer field {}", names[0]),
	})
}

pub(crate) fn opt_usize(json: &Value, names: &[&str]) -> Option<usize> {
	field(json, names).and_then(Value::as_u64).map(|v| v as usize)
}

pub(crate) fn f64_field(json: &Value, names: &[&str], default: f64) -> f64 {
	field(json, names).and_then(Value::as_f64).unwrap_or(default)
}

pub(crate) fn bool_field(json: &Value, name: &str, default: bool) -> bool {
	json.get(name).and_then(Value::as_bool).unwrap_or(default)
}

/// `eos_token_id` may be a list (LLaMA 3); the first one ends generation.
pub(crate) fn token_field(json: &Value, name: &str) -> Option<u32> {
	match json.get(name)? {
		Value::Array(ids) => ids.first()?.as_u64().map(|v| v as u32),
		v => v.as_u64().map(|v| v as u32),
	}
}

impl ModelConfig {
	/// Builds the configuration from a parsed Hugging Face `config.json`.
	pub fn from_hf(json: &Value) -> Result<Self> {
		let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or_default();
		if model_type.starts_with("deepseek_v") {
			return Err(Error::UnknownFamily(format!(
				"{model_type} (DeepSeek's mixture-of-experts models are out of scope; its dense \
				 releases load as llama or qwen2)"
			)));
		}
		let family = Family::from_model_type(model_type)?;
		let cfg = family.config(json)?;
		cfg.check()?;
		Ok(cfg)
	}

	fn check(&self) -> Result<()> {
		let bad = |reason: String| Error::Corrupt {
			what: "config.json",
			path: "config.json".into(),
			reason,
		};
		if self.num_heads == 0
			|| self.num_kv_heads == 0
			|| !self.num_heads.is_multiple_of(self.num_kv_heads)
		{
			return Err(bad(format!(
				"{} attention heads cannot share {} key/value heads",
				self.num_heads, self.num_kv_heads
			)));
		}
		if let Positions::Rope { rotary_dim, .. } = self.positions {
			if rotary_dim % 2 != 0 || rotary_dim > self.head_dim {
				return Err(bad(format!(
					"rotary dimension {rotary_dim} does not fit heads of {}",
					self.head_dim
				)));
			}
		}
		Ok(())
	}

	/// Width of the fused or separate q/k/v output.
	pub fn qkv_width(&self) -> (usize, usize) {
		(self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim)
	}

	/// Parameters in the base model (embeddings included once when tied).
	pub fn parameter_count(&self) -> usize {
		let (q, kv) = self.qkv_width();
		let attention = self.hidden_size * (q + 2 * kv) + q * self.hidden_size;
		let mlp = match self.mlp {
			Mlp::GatedSilu | Mlp::FusedGatedSilu => 3 * self.hidden_size * self.intermediate_size,
			Mlp::GeluTanh => 2 * self.hidden_size * self.intermediate_size,
		};
		let embeddings =
			self.vocab_size * self.hidden_size * if self.tie_word_embeddings { 1 } else { 2 };
		self.num_layers * (attention + mlp) + embeddings
	}
}
