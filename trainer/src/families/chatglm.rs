//! ChatGLM2/3: rotary on half of each head with adjacent pairs turned, multi-query attention
//! through one fused `query_key_value`, and gate and up fused in `dense_h_to_4h`.

use super::{Family, ModulePaths};
use crate::{
	config::{
		bool_field, f64_field, token_field, usize_field, Mlp, ModelConfig, Norm, Positions,
		QkvLayout,
	},
	Result,
};
use serde_json::Value;

/// Where the checkpoints keep each module.
pub(super) const PATHS: ModulePaths = ModulePaths {
	embed: "transformer.embedding.word_embeddings",
	positions: None,
	embedding_norm: None,
	layers: "transformer.encoder.layers",
	attn_norm: "input_layernorm",
	mlp_norm: "post_attention_layernorm",
	attention: "self_attention",
	fused_qkv: Some("query_key_value"),
	attn_out: "dense",
	mlp_in_out: Some(("dense_h_to_4h", "dense_4h_to_h")),
	final_norm: "transformer.encoder.final_layernorm",
	lm_head: Some("transformer.output_layer"),
};

/// The switches `config.json` sets.
pub(super) fn config(json: &Value, family: Family) -> Result<ModelConfig> {
	let num_heads = usize_field(json, &["num_attention_heads"])?;
	let head_dim = usize_field(json, &["kv_channels"])?;
	let multi_query = bool_field(json, "multi_query_attention", false);
	Ok(ModelConfig {
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
			scaling: None,
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
		latent_attention: None,
		experts: None,
		eos_token_id: token_field(json, "eos_token_id"),
		bos_token_id: token_field(json, "bos_token_id"),
	})
}
