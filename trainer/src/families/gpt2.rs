//! GPT-2: LayerNorm, learned positions, a fused `c_attn` for q/k/v, a GELU MLP, and Conv1D
//! weights stored `[in, out]`. Hub checkpoints saved from the bare model drop the
//! `transformer.` prefix that the causal-LM class (and PEFT) uses.

use super::{Family, ModulePaths};
use crate::{
	config::{
		f64_field, opt_usize, token_field, usize_field, Mlp, ModelConfig, Norm, Positions,
		QkvLayout,
	},
	Result,
};
use serde_json::Value;

/// Where the checkpoints keep each module.
pub(super) const PATHS: ModulePaths = ModulePaths {
	embed: "transformer.wte",
	positions: Some("transformer.wpe"),
	embedding_norm: None,
	layers: "transformer.h",
	attn_norm: "ln_1",
	mlp_norm: "ln_2",
	attention: "attn",
	fused_qkv: Some("c_attn"),
	attn_out: "c_proj",
	mlp_in_out: Some(("c_fc", "c_proj")),
	final_norm: "transformer.ln_f",
	lm_head: None,
};

/// The switches `config.json` sets.
pub(super) fn config(json: &Value, family: Family) -> Result<ModelConfig> {
	let hidden_size = usize_field(json, &["n_embd", "hidden_size"])?;
	let num_heads = usize_field(json, &["n_head", "num_attention_heads"])?;
	Ok(ModelConfig {
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
		latent_attention: None,
		experts: None,
		eos_token_id: token_field(json, "eos_token_id"),
		bos_token_id: token_field(json, "bos_token_id"),
	})
}
