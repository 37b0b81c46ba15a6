//! BLOOM: ALiBi position biases, a LayerNorm right after the embedding, and q/k/v fused per
//! head (`[head0: q k v | head1: q k v | …]`).

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
	embed: "transformer.word_embeddings",
	positions: None,
	embedding_norm: Some("transformer.word_embeddings_layernorm"),
	layers: "transformer.h",
	attn_norm: "input_layernorm",
	mlp_norm: "post_attention_layernorm",
	attention: "self_attention",
	fused_qkv: Some("query_key_value"),
	attn_out: "dense",
	mlp_in_out: Some(("dense_h_to_4h", "dense_4h_to_h")),
	final_norm: "transformer.ln_f",
	lm_head: None,
};

/// The switches `config.json` sets.
pub(super) fn config(json: &Value, family: Family) -> Result<ModelConfig> {
	let hidden_size = usize_field(json, &["hidden_size", "n_embed"])?;
	let num_heads = usize_field(json, &["n_head", "num_attention_heads"])?;
	Ok(ModelConfig {
		family,
		vocab_size: usize_field(json, &["vocab_size"])?,
		hidden_size,
		intermediate_size: 4 * hidden_size,
		num_layers: usize_field(json, &["n_layer", "num_hidden_layers"])?,
		num_heads,
		num_kv_heads: num_heads,
		head_dim: hidden_size / num_heads,
		// ALiBi has no table; BLOOM was trained on 2,048 tokens.
		max_positions: opt_usize(json, &["seq_length", "max_position_embeddings"]).unwrap_or(2048),
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
		latent_attention: None,
		experts: None,
		eos_token_id: token_field(json, "eos_token_id"),
		bos_token_id: token_field(json, "bos_token_id"),
	})
}
