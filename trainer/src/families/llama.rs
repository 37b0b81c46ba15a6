//! LLaMA 2/3 and the families built on its layout: Mistral (a sliding attention window), Qwen2
//! (a bias on q/k/v) and Qwen3 (RMSNorm on each head's queries and keys), and DeepSeek's dense
//! releases, which declare `llama` or `qwen2`. Also the names llama.cpp's GGUF files use.

use super::{Family, ModulePaths};
use crate::{
	config::{
		bool_field, f64_field, opt_usize, token_field, usize_field, Llama3RopeScaling, Mlp,
		ModelConfig, Norm, Positions, QkvLayout, RopeScaling,
	},
	Result,
};
use candle_core::Tensor;
use serde_json::Value;

/// Where the checkpoints keep each module.
pub(super) const PATHS: ModulePaths = ModulePaths {
	embed: "model.embed_tokens",
	positions: None,
	embedding_norm: None,
	layers: "model.layers",
	attn_norm: "input_layernorm",
	mlp_norm: "post_attention_layernorm",
	attention: "self_attn",
	fused_qkv: None,
	attn_out: "o_proj",
	mlp_in_out: None,
	final_norm: "model.norm",
	lm_head: Some("lm_head"),
};

/// The switches `config.json` sets for `family`.
pub(super) fn config(json: &Value, family: Family) -> Result<ModelConfig> {
	let hidden_size = usize_field(json, &["hidden_size"])?;
	let num_heads = usize_field(json, &["num_attention_heads"])?;
	let head_dim = opt_usize(json, &["head_dim"]).unwrap_or(hidden_size / num_heads);
	let llama3_scaling = json.get("rope_scaling").filter(|s| {
		s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str) == Some("llama3")
	});
	let sliding_window = match family {
		Family::Mistral => opt_usize(json, &["sliding_window"]),
		Family::Qwen2 | Family::Qwen3 if bool_field(json, "use_sliding_window", false) => {
			opt_usize(json, &["sliding_window"])
		},
		_ => None,
	};
	Ok(ModelConfig {
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
			scaling: llama3_scaling.map(|s| {
				RopeScaling::Llama3(Llama3RopeScaling {
					factor: f64_field(s, &["factor"], 8.0),
					low_freq_factor: f64_field(s, &["low_freq_factor"], 1.0),
					high_freq_factor: f64_field(s, &["high_freq_factor"], 4.0),
					original_max_positions: opt_usize(s, &["original_max_position_embeddings"])
						.unwrap_or(8192),
				})
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
		latent_attention: None,
		experts: None,
		eos_token_id: token_field(json, "eos_token_id"),
		bos_token_id: token_field(json, "bos_token_id"),
	})
}

/// The Hugging Face name of a tensor of a GGUF file of the llama architecture.
pub(crate) fn gguf_tensor_name(gguf: &str) -> Option<String> {
	let global = match gguf {
		"token_embd.weight" => Some("model.embed_tokens.weight"),
		"output_norm.weight" => Some("model.norm.weight"),
		"output.weight" => Some("lm_head.weight"),
		_ => None,
	};
	if let Some(name) = global {
		return Some(name.to_string());
	}
	let rest = gguf.strip_prefix("blk.")?;
	let (layer, tail) = rest.split_once('.')?;
	let (module, kind) = tail.rsplit_once('.')?;
	let hf = match module {
		"attn_norm" => "input_layernorm",
		"ffn_norm" => "post_attention_layernorm",
		"attn_q" => "self_attn.q_proj",
		"attn_k" => "self_attn.k_proj",
		"attn_v" => "self_attn.v_proj",
		"attn_output" => "self_attn.o_proj",
		"ffn_gate" => "mlp.gate_proj",
		"ffn_up" => "mlp.up_proj",
		"ffn_down" => "mlp.down_proj",
		_ => return None,
	};
	Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Undoes llama.cpp's q/k row permutation: GGUF rows are `(head, j, half)`, HF's
/// `(head, half, j)`.
pub(crate) fn unpermute_gguf_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
	let (out, inp) = w.dims2()?;
	let half = out / heads / 2;
	Ok(w.reshape((heads, half, 2, inp))?.transpose(1, 2)?.reshape((out, inp))?)
}
