//! Model families and the one configuration the decoder is built from.
//!
//! Every supported checkpoint is a pre-norm decoder-only transformer; the families differ in a
//! handful of switches (norm, positions, attention layout, MLP, biases). [`ModelConfig::from_hf`]
//! reads a Hugging Face `config.json` and sets those switches, so [`crate::model`] has a single
//! code path and no per-family model files.

use crate::{Error, Result};
use serde_json::Value;

/// A supported architecture family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
	/// LLaMA 2/3 and DeepSeek's dense LLaMA-architecture models.
	Llama,
	/// Mistral: LLaMA with a sliding attention window.
	Mistral,
	/// Qwen2 (and DeepSeek-R1 distills on it): LLaMA with a bias on q/k/v.
	Qwen2,
	/// Qwen3: LLaMA with RMSNorm on each head's queries and keys.
	Qwen3,
	/// GPT-2: LayerNorm, learned positions, Conv1D (transposed) weights, fused `c_attn`.
	Gpt2,
	/// BLOOM: ALiBi positions, a LayerNorm after the embedding, per-head fused q/k/v.
	Bloom,
	/// ChatGLM2/3: rotary on half of each head (interleaved), multi-query, fused q/k/v.
	ChatGlm,
}

impl Family {
	/// The `model_type` of the family's `config.json`.
	pub fn name(self) -> &'static str {
		match self {
			Family::Llama => "llama",
			Family::Mistral => "mistral",
			Family::Qwen2 => "qwen2",
			Family::Qwen3 => "qwen3",
			Family::Gpt2 => "gpt2",
			Family::Bloom => "bloom",
			Family::ChatGlm => "chatglm",
		}
	}

	/// Reads the family from `model_type`. DeepSeek's dense releases declare `llama` or
	/// `qwen2`; its mixture-of-experts V2/V3 are refused by name.
	pub fn from_model_type(model_type: &str) -> Result<Self> {
		Ok(match model_type {
			"llama" | "deepseek" => Family::Llama,
			"mistral" => Family::Mistral,
			"qwen2" => Family::Qwen2,
			"qwen3" => Family::Qwen3,
			"gpt2" => Family::Gpt2,
			"bloom" => Family::Bloom,
			"chatglm" => Family::ChatGlm,
			other => return Err(Error::UnknownFamily(other.to_string())),
		})
	}

	/// The family as the chain's job rules name it.
	pub fn spec(self) -> provenant_jobspec::Family {
		use provenant_jobspec::Family as Spec;
		match self {
			Family::Llama => Spec::Llama,
			Family::Mistral => Spec::Mistral,
			Family::Qwen2 | Family::Qwen3 => Spec::Qwen,
			Family::Gpt2 => Spec::Gpt2,
			Family::Bloom => Spec::Bloom,
			Family::ChatGlm => Spec::ChatGlm,
		}
	}

	/// The linear modules LoRA can target, under the names the family's checkpoints and
	/// PEFT use.
	pub fn linear_modules(self) -> Vec<&'static str> {
		self.spec().modules().iter().map(|module| module.name()).collect()
	}

	/// PEFT's default targets for the family (its attention projections).
	pub fn default_targets(self) -> Vec<&'static str> {
		self.spec().default_targets().iter().map(|module| module.name()).collect()
	}
}

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
		/// LLaMA 3's frequency scaling: (factor, low_freq_factor, high_freq_factor, original
		/// context).
		llama3_scaling: Option<(f64, f64, f64, usize)>,
	},
	/// A learned position-embedding table (GPT-2).
	Learned,
	/// Linear attention biases (BLOOM).
	Alibi,
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

fn field<'a>(json: &'a Value, names: &[&str]) -> Option<&'a Value> {
	names.iter().find_map(|name| json.get(*name).filter(|v| !v.is_null()))
}

fn usize_field(json: &Value, names: &[&'static str]) -> Result<usize> {
	field(json, names).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| Error::Corrupt {
		what: "config.json",
		path: "config.json".into(),
		reason: format!("missing integer field {}", names[0]),
	})
}

fn opt_usize(json: &Value, names: &[&str]) -> Option<usize> {
	field(json, names).and_then(Value::as_u64).map(|v| v as usize)
}

fn f64_field(json: &Value, names: &[&str], default: f64) -> f64 {
	field(json, names).and_then(Value::as_f64).unwrap_or(default)
}

fn bool_field(json: &Value, name: &str, default: bool) -> bool {
	json.get(name).and_then(Value::as_bool).unwrap_or(default)
}

/// `eos_token_id` may be a list (LLaMA 3); the first one ends generation.
fn token_field(json: &Value, name: &str) -> Option<u32> {
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
		let eos_token_id = token_field(json, "eos_token_id");
		let bos_token_id = token_field(json, "bos_token_id");
		let cfg = match family {
			Family::Llama | Family::Mistral | Family::Qwen2 | Family::Qwen3 => {
				let hidden_size = usize_field(json, &["hidden_size"])?;
				let num_heads = usize_field(json, &["num_attention_heads"])?;
				let head_dim = opt_usize(json, &["head_dim"]).unwrap_or(hidden_size / num_heads);
				let llama3_scaling = json.get("rope_scaling").filter(|s| {
					s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str)
						== Some("llama3")
				});
				let sliding_window = match family {
					Family::Mistral => opt_usize(json, &["sliding_window"]),
					Family::Qwen2 | Family::Qwen3
						if bool_field(json, "use_sliding_window", false) =>
					{
						opt_usize(json, &["sliding_window"])
					},
					_ => None,
				};
				ModelConfig {
					family,
					vocab_size: usize_field(json, &["vocab_size"])?,
					hidden_size,
					intermediate_size: usize_field(json, &["intermediate_size"])?,
					num_layers: usize_field(json, &["num_hidden_layers"])?,
					num_heads,
					num_kv_heads: opt_usize(json, &["num_key_value_heads"]).unwrap_or(num_heads),
					head_dim,
					max_positions: opt_usize(json, &["max_position_embeddings"]).unwrap_or(4096),
					norm: Norm::Rms,
					norm_eps: f64_field(json, &["rms_norm_eps"], 1e-6),
					positions: Positions::Rope {
						theta: f64_field(json, &["rope_theta"], 10_000.0),
						rotary_dim: head_dim,
						interleaved: false,
						llama3_scaling: llama3_scaling.map(|s| {
							(
								f64_field(s, &["factor"], 8.0),
								f64_field(s, &["low_freq_factor"], 1.0),
								f64_field(s, &["high_freq_factor"], 4.0),
								opt_usize(s, &["original_max_position_embeddings"]).unwrap_or(8192),
							)
						}),
					},
					mlp: Mlp::GatedSilu,
					qkv: QkvLayout::Separate,
					qkv_bias: family == Family::Qwen2 || bool_field(json, "attention_bias", false),
					dense_bias: bool_field(json, "mlp_bias", false),
					qk_norm: family == Family::Qwen3,
					sliding_window,
					tie_word_embeddings: bool_field(json, "tie_word_embeddings", false),
					embedding_norm: false,
					conv1d_weights: false,
					eos_token_id,
					bos_token_id,
				}
			},
			Family::Gpt2 => {
				let hidden_size = usize_field(json, &["n_embd", "hidden_size"])?;
				let num_heads = usize_field(json, &["n_head", "num_attention_heads"])?;
				ModelConfig {
					family,
					vocab_size: usize_field(json, &["vocab_size"])?,
					hidden_size,
					intermediate_size: opt_usize(json, &["n_inner"]).unwrap_or(4 * hidden_size),
					num_layers: usize_field(json, &["n_layer", "num_hidden_layers"])?,
					num_heads,
					num_kv_heads: num_heads,
					head_dim: hidden_size / num_heads,
					max_positions: usize_field(json, &["n_positions", "max_position_embeddings"])?,
					norm: Norm::Layer,
					norm_eps: f64_field(json, &["layer_norm_epsilon"], 1e-5),
					positions: Positions::Learned,
					mlp: Mlp::GeluTanh,
					qkv: QkvLayout::Concatenated,
					qkv_bias: true,
					dense_bias: true,
					qk_norm: false,
					sliding_window: None,
					tie_word_embeddings: true,
					embedding_norm: false,
					conv1d_weights: true,
					eos_token_id,
					bos_token_id,
				}
			},
			Family::Bloom => {
				let hidden_size = usize_field(json, &["hidden_size", "n_embed"])?;
				let num_heads = usize_field(json, &["n_head", "num_attention_heads"])?;
				ModelConfig {
					family,
					vocab_size: usize_field(json, &["vocab_size"])?,
					hidden_size,
					intermediate_size: 4 * hidden_size,
					num_layers: usize_field(json, &["n_layer", "num_hidden_layers"])?,
					num_heads,
					num_kv_heads: num_heads,
					head_dim: hidden_size / num_heads,
					// ALiBi has no table; BLOOM was trained on 2,048 tokens.
					max_positions: opt_usize(json, &["seq_length", "max_position_embeddings"])
						.unwrap_or(2048),
					norm: Norm::Layer,
					norm_eps: f64_field(json, &["layer_norm_epsilon"], 1e-5),
					positions: Positions::Alibi,
					mlp: Mlp::GeluTanh,
					qkv: QkvLayout::PerHead,
					qkv_bias: true,
					dense_bias: true,
					qk_norm: false,
					sliding_window: None,
					tie_word_embeddings: true,
					embedding_norm: true,
					conv1d_weights: false,
					eos_token_id,
					bos_token_id,
				}
			},
			Family::ChatGlm => {
				let num_heads = usize_field(json, &["num_attention_heads"])?;
				let head_dim = usize_field(json, &["kv_channels"])?;
				let multi_query = bool_field(json, "multi_query_attention", false);
				ModelConfig {
					family,
					vocab_size: usize_field(json, &["padded_vocab_size", "vocab_size"])?,
					hidden_size: usize_field(json, &["hidden_size"])?,
					intermediate_size: usize_field(json, &["ffn_hidden_size"])?,
					num_layers: usize_field(json, &["num_layers"])?,
					num_heads,
					num_kv_heads: if multi_query {
						usize_field(json, &["multi_query_group_num"])?
					} else {
						num_heads
					},
					head_dim,
					max_positions: usize_field(json, &["seq_length"])?,
					norm: if bool_field(json, "rmsnorm", true) { Norm::Rms } else { Norm::Layer },
					norm_eps: f64_field(json, &["layernorm_epsilon"], 1e-5),
					positions: Positions::Rope {
						theta: 10_000.0 * f64_field(json, &["rope_ratio"], 1.0),
						rotary_dim: head_dim / 2,
						interleaved: true,
						llama3_scaling: None,
					},
					mlp: Mlp::FusedGatedSilu,
					qkv: QkvLayout::Concatenated,
					qkv_bias: bool_field(json, "add_qkv_bias", false)
						|| bool_field(json, "add_bias_linear", false),
					dense_bias: bool_field(json, "add_bias_linear", false),
					qk_norm: false,
					sliding_window: None,
					tie_word_embeddings: false,
					embedding_norm: false,
					conv1d_weights: false,
					eos_token_id,
					bos_token_id,
				}
			},
		};
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
