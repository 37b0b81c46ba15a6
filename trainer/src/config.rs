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
		/// LLaMA 3's or YaRN's frequency scaling.
		scaling: Option<RopeScaling>,
	},
	/// A learned position-embedding table (GPT-2).
	Learned,
	/// Linear attention biases (BLOOM).
	Alibi,
}

/// A rotary embedding's frequency scaling, for contexts past the pre-training length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
	/// LLaMA 3's.
	Llama3(Llama3RopeScaling),
	/// YaRN's (Peng et al., 2023), as DeepSeek-V2/V3 use it.
	Yarn(YarnRopeScaling),
}

/// YaRN (`rope_scaling` with `type: "yarn"`): each frequency is blended between itself and
/// itself slowed by `factor`, by where its wavelength falls between the `beta_fast` and
/// `beta_slow` rotations over the original context; cosines and sines are scaled by
/// `attention_factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YarnRopeScaling {
	/// How much the longest wavelengths are slowed.
	pub factor: f64,
	/// The context length the model was pre-trained on.
	pub original_max_positions: usize,
	/// Frequencies that turn more than this often over the original context are kept.
	pub beta_fast: f64,
	/// Frequencies that turn less than this often are slowed fully.
	pub beta_slow: f64,
	/// What cosines and sines are multiplied by.
	pub attention_factor: f64,
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
	/// DeepSeek's multi-head latent attention, in place of q/k/v projections.
	pub latent_attention: Option<LatentAttention>,
	/// DeepSeek's mixture-of-experts layers, in place of the MLP of the later blocks.
	pub experts: Option<Experts>,
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

/// Multi-head latent attention (DeepSeek-V2, Liu et al., 2024): keys and values are expanded
/// from one compressed vector per position, queries optionally from another, and each head's
/// query and key end in a rotary part, the keys' shared by every head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatentAttention {
	/// Width of the compressed query (`q_a_proj`), or `None` for a plain `q_proj`.
	pub q_rank: Option<usize>,
	/// Width of the compressed key and value (`kv_a_proj_with_mqa`'s first outputs).
	pub kv_rank: usize,
	/// A head's query and key width without rotation.
	pub nope_dim: usize,
	/// A head's query and key width with rotation.
	pub rope_dim: usize,
	/// A head's value width.
	pub value_dim: usize,
	/// Whether `q_a_proj`, `kv_a_proj_with_mqa` and `o_proj` have biases.
	pub bias: bool,
	/// What scores are multiplied by before the softmax: `1/√(nope + rope)`, times YaRN's
	/// `mscale²` where it applies.
	pub softmax_scale: f64,
}

/// How a mixture-of-experts layer picks a token's experts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
	/// DeepSeek-V2: softmax scores; the top `k` of all experts, or (`group_limited`) of the
	/// experts in the groups whose best score is among the top `topk_group`.
	Softmax {
		/// Whether only the best groups' experts can be picked.
		group_limited: bool,
	},
	/// DeepSeek-V3: sigmoid scores; picked by score plus a per-expert correction bias, within
	/// the groups whose two best biased scores sum highest; weighted by the unbiased score.
	Sigmoid {
		/// Whether a token's weights are divided by their sum.
		normalize: bool,
	},
}

/// A mixture-of-experts layer's shape (DeepSeekMoE, Dai et al., 2024): routed SwiGLU experts,
/// `per_token` of which each token uses, beside shared ones every token uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Experts {
	/// Routed experts.
	pub routed: usize,
	/// Routed experts a token uses.
	pub per_token: usize,
	/// Shared experts, held as one MLP `shared` times as wide.
	pub shared: usize,
	/// Width of one expert's MLP.
	pub width: usize,
	/// Blocks before the first mixture-of-experts one keep a dense MLP.
	pub first_layer: usize,
	/// Experts form this many equal groups, in index order.
	pub groups: usize,
	/// Groups a token's experts may come from.
	pub topk_groups: usize,
	/// The routed experts' weighted sum is multiplied by this.
	pub scaling: f64,
	/// How experts are picked.
	pub routing: Routing,
}

impl ModelConfig {
	/// Builds the configuration from a parsed Hugging Face `config.json`.
	pub fn from_hf(json: &Value) -> Result<Self> {
		let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or_default();
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

	/// The modules LoRA can target in this model: its family's, less the query projections a
	/// DeepSeek model does not have.
	pub fn linear_modules(&self) -> Vec<&'static str> {
		let mut modules = self.family.linear_modules();
		if let Some(latent) = self.latent_attention {
			modules.retain(|module| match *module {
				"q_proj" => latent.q_rank.is_none(),
				"q_a_proj" | "q_b_proj" => latent.q_rank.is_some(),
				_ => true,
			});
		}
		modules
	}

	/// Width of the fused or separate q/k/v output.
	pub fn qkv_width(&self) -> (usize, usize) {
		(self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim)
	}

	/// Parameters in the base model (embeddings included once when tied).
	pub fn parameter_count(&self) -> usize {
		let h = self.hidden_size;
		let attention = match self.latent_attention {
			Some(l) => {
				let query = self.num_heads * (l.nope_dim + l.rope_dim);
				let q = l.q_rank.map_or(h * query, |rank| h * rank + rank * query);
				q + h * (l.kv_rank + l.rope_dim)
					+ l.kv_rank * self.num_heads * (l.nope_dim + l.value_dim)
					+ self.num_heads * l.value_dim * h
			},
			None => {
				let (q, kv) = self.qkv_width();
				h * (q + 2 * kv) + q * h
			},
		};
		let mlp = |width: usize| match self.mlp {
			Mlp::GatedSilu | Mlp::FusedGatedSilu => 3 * h * width,
			Mlp::GeluTanh => 2 * h * width,
		};
		let mlps: usize = (0..self.num_layers)
			.map(|layer| match self.experts {
				Some(e) if layer >= e.first_layer => {
					(e.routed + e.shared) * mlp(e.width) + e.routed * h
				},
				_ => mlp(self.intermediate_size),
			})
			.sum();
		let embeddings = self.vocab_size * h * if self.tie_word_embeddings { 1 } else { 2 };
		self.num_layers * attention + mlps + embeddings
	}
}
