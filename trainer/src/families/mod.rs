//! Each supported family's facts, one file a family: which `config.json` keys set which
//! switches of [`ModelConfig`], where its checkpoints keep each module, and its quirks.
//!
//! Adding a family: write its file here with a `config` function and its `PATHS`, add a
//! [`Family`] variant with its `model_type`, and one arm in each match below. The decoder in
//! [`crate::model`] needs no change unless the family brings a switch it lacks.

mod bloom;
mod chatglm;
mod deepseek;
mod gpt2;
mod llama;

pub(crate) use llama::{gguf_tensor_name, unpermute_gguf_rows};

use crate::{config::ModelConfig, Error, Result};
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
	/// DeepSeek-V2: latent attention, softmax-routed experts.
	DeepSeekV2,
	/// DeepSeek-V3: latent attention, sigmoid-routed experts with a correction bias.
	DeepSeekV3,
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
			Family::DeepSeekV2 => "deepseek_v2",
			Family::DeepSeekV3 => "deepseek_v3",
		}
	}

	/// Reads the family from `model_type`. DeepSeek's dense releases declare `llama` or
	/// `qwen2`.
	pub fn from_model_type(model_type: &str) -> Result<Self> {
		Ok(match model_type {
			"llama" | "deepseek" => Family::Llama,
			"mistral" => Family::Mistral,
			"qwen2" => Family::Qwen2,
			"qwen3" => Family::Qwen3,
			"gpt2" => Family::Gpt2,
			"bloom" => Family::Bloom,
			"chatglm" => Family::ChatGlm,
			"deepseek_v2" => Family::DeepSeekV2,
			"deepseek_v3" => Family::DeepSeekV3,
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
			Family::DeepSeekV2 | Family::DeepSeekV3 => Spec::DeepSeek,
		}
	}

	/// The linear modules LoRA can target, under the names the family's checkpoints and
	/// PEFT use.
	pub fn linear_modules(self) -> Vec<&'static str> {
		self.spec().modules().iter().map(|module| module.name()).collect()
	}

	/// PEFT's default targets for the family (its attention projections; PEFT has none for
	/// DeepSeek, which gets all of its attention's).
	pub fn default_targets(self) -> Vec<&'static str> {
		self.spec().default_targets().iter().map(|module| module.name()).collect()
	}

	/// The switches the family's `config.json` sets.
	pub(crate) fn config(self, json: &Value) -> Result<ModelConfig> {
		match self {
			Family::Llama | Family::Mistral | Family::Qwen2 | Family::Qwen3 => {
				llama::config(json, self)
			},
			Family::Gpt2 => gpt2::config(json, self),
			Family::Bloom => bloom::config(json, self),
			Family::ChatGlm => chatglm::config(json, self),
			Family::DeepSeekV2 | Family::DeepSeekV3 => deepseek::config(json, self),
		}
	}

	/// Where the family's checkpoints keep each module.
	pub(crate) fn paths(self) -> &'static ModulePaths {
		match self {
			Family::Llama
			| Family::Mistral
			| Family::Qwen2
			| Family::Qwen3
			| Family::DeepSeekV2
			| Family::DeepSeekV3 => &llama::PATHS,
			Family::Gpt2 => &gpt2::PATHS,
			Family::Bloom => &bloom::PATHS,
			Family::ChatGlm => &chatglm::PATHS,
		}
	}
}

/// Where a family's checkpoints keep each module, under the names PEFT's adapters use.
#[derive(Debug)]
pub(crate) struct ModulePaths {
	/// The token embedding.
	pub(crate) embed: &'static str,
	/// A learned position-embedding table, for families that have one.
	pub(crate) positions: Option<&'static str>,
	/// A norm right after the embedding, for families that have one.
	pub(crate) embedding_norm: Option<&'static str>,
	/// Block `i` is at `{layers}.{i}`.
	pub(crate) layers: &'static str,
	/// Within a block: the norm before attention.
	pub(crate) attn_norm: &'static str,
	/// Within a block: the norm before the MLP.
	pub(crate) mlp_norm: &'static str,
	/// Within a block: the attention module.
	pub(crate) attention: &'static str,
	/// Within attention: the fused q/k/v projection, or `None` for `q_proj`, `k_proj` and
	/// `v_proj`.
	pub(crate) fused_qkv: Option<&'static str>,
	/// Within attention: the output projection.
	pub(crate) attn_out: &'static str,
	/// Within the block's `mlp`: the input and output projections, or `None` for `gate_proj`,
	/// `up_proj` and `down_proj`.
	pub(crate) mlp_in_out: Option<(&'static str, &'static str)>,
	/// The final norm.
	pub(crate) final_norm: &'static str,
	/// The output projection when it is not tied to the embedding.
	pub(crate) lm_head: Option<&'static str>,
}
