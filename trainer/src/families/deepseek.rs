//! DeepSeek-V2 and V3 (`deepseek_v2`, `deepseek_v3`): multi-head latent attention and
//! mixture-of-experts blocks after the first `first_k_dense_replace`, with LLaMA's module
//! paths. The fields, their defaults and the reference behaviour are those of Hugging Face
//! transformers' own classes, as `docs/deepseek.md` records them; where DeepSeek's remote code
//! differs (V2's `norm_topk_prob`), transformers is followed. The multi-token-prediction
//! layers of V3 (`num_nextn_predict_layers`) are out of scope: transformers never runs them,
//! and their weights, stored past the last block, are left unread.

use super::Family;
use crate::{
	config::{
		bool_field, f64_field, field, opt_usize, token_field, usize_field, Experts,
		LatentAttention, Mlp, ModelConfig, Norm, Positions, QkvLayout, RopeScaling, Routing,
		YarnRopeScaling,
	},
	Error, Result,
};
use serde_json::Value;

fn refuse(reason: String) -> Error {
	Error::Corrupt { what: "config.json", path: "config.json".into(), reason }
}

/// YaRN's magnitude correction for a context `factor` times the original.
fn yarn_mscale(factor: f64, mscale: f64) -> f64 {
	if factor <= 1.0 {
		1.0
	} else {
		0.1 * mscale * factor.ln() + 1.0
	}
}

/// The switches `config.json` sets for `family`.
pub(super) fn config(json: &Value, family: Family) -> Result<ModelConfig> {
	let v3 = family == Family::DeepSeekV3;
	let hidden_size = usize_field(json, &["hidden_size"])?;
	let num_heads = usize_field(json, &["num_attention_heads"])?;
	// transformers repeats keys and values `heads / key_value_heads` times, but its keys
	// already have a head per query head: only equal counts compute what it does.
	if let Some(kv_heads) = opt_usize(json, &["num_key_value_heads"]) {
		if kv_heads != num_heads {
			return Err(refuse(format!(
				"num_key_value_heads {kv_heads} must equal num_attention_heads {num_heads} \
				 for latent attention"
			)));
		}
	}
	let nope_dim = usize_field(json, &["qk_nope_head_dim"])?;
	let rope_dim = usize_field(json, &["qk_rope_head_dim"])?;
	let value_dim = usize_field(json, &["v_head_dim"])?;
	let max_positions =
		opt_usize(json, &["max_position_embeddings"]).unwrap_or(if v3 { 4096 } else { 2048 });

	// transformers 5 keeps rope settings in `rope_parameters`; older configs in `rope_theta`
	// and `rope_scaling`.
	let rope = field(json, &["rope_parameters"]);
	let theta = rope
		.and_then(|r| r.get("rope_theta"))
		.and_then(Value::as_f64)
		.unwrap_or_else(|| f64_field(json, &["rope_theta"], 10_000.0));
	let scaling = field(json, &["rope_scaling"]).or(rope);
	let rope_type = scaling
		.and_then(|s| s.get("rope_type").or_else(|| s.get("type")))
		.and_then(Value::as_str)
		.unwrap_or("default");
	let mut softmax_scale = 1.0 / ((nope_dim + rope_dim) as f64).sqrt();
	let scaling = match (rope_type, scaling) {
		("default", _) | (_, None) => None,
		("yarn", Some(s)) => {
			let original =
				opt_usize(s, &["original_max_position_embeddings"]).unwrap_or(max_positions);
			let factor = field(s, &["factor"])
				.and_then(Value::as_f64)
				.unwrap_or(max_positions as f64 / original as f64);
			let mscale = f64_field(s, &["mscale"], 0.0);
			let mscale_all_dim = f64_field(s, &["mscale_all_dim"], 0.0);
			let attention_factor = match field(s, &["attention_factor"]).and_then(Value::as_f64) {
				Some(explicit) => explicit,
				None if mscale != 0.0 && mscale_all_dim != 0.0 => {
					yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim)
				},
				None => yarn_mscale(factor, 1.0),
			};
			// DeepSeek's own correction: the whole magnitude goes into the softmax.
			if mscale_all_dim != 0.0 {
				softmax_scale *= yarn_mscale(factor, mscale_all_dim).powi(2);
			}
			let beta = |name: &str, default: f64| match f64_field(s, &[name], 0.0) {
				0.0 => default,
				value => value,
			};
			Some(RopeScaling::Yarn(YarnRopeScaling {
				factor,
				original_max_positions: original,
				beta_fast: beta("beta_fast", 32.0),
				beta_slow: beta("beta_slow", 1.0),
				attention_factor,
			}))
		},
		(other, Some(_)) => {
			return Err(refuse(format!(
				"rope scaling {other:?} is not supported for {} (default or yarn)",
				family.name()
			)))
		},
	};

	let routed = usize_field(json, &["n_routed_experts", "num_experts", "num_local_experts"])?;
	let per_token = match opt_usize(json, &["num_experts_per_tok"]) {
		Some(k) => k,
		None if v3 => 8,
		None => return Err(refuse("missing integer field num_experts_per_tok".into())),
	};
	let routing = if v3 {
		Routing::Sigmoid { normalize: bool_field(json, "norm_topk_prob", true) }
	} else {
		match json.get("topk_method").and_then(Value::as_str).unwrap_or("greedy") {
			"greedy" => Routing::Softmax { group_limited: false },
			"group_limited_greedy" => Routing::Softmax { group_limited: true },
			other => {
				return Err(refuse(format!(
					"topk_method {other:?} is not one of DeepSeek-V2's (greedy, \
					 group_limited_greedy)"
				)))
			},
		}
	};
	let grouped =
		matches!(routing, Routing::Sigmoid { .. } | Routing::Softmax { group_limited: true });
	let (groups, topk_groups) = if grouped {
		let default = if v3 { (8, 4) } else { (1, 1) };
		(
			opt_usize(json, &["n_group"]).unwrap_or(default.0),
			opt_usize(json, &["topk_group"]).unwrap_or(default.1),
		)
	} else {
		(1, 1)
	};
	if groups == 0 || !routed.is_multiple_of(groups) || topk_groups == 0 || topk_groups > groups {
		return Err(refuse(format!(
			"{routed} experts cannot form {groups} groups with {topk_groups} picked"
		)));
	}
	// V3 scores a group by its two best experts.
	if v3 && routed / groups < 2 {
		return Err(refuse(format!(
			"groups of {} expert cannot be scored by their best two",
			routed / groups
		)));
	}
	let pickable = topk_groups * routed / groups;
	if per_token == 0 || per_token > pickable {
		return Err(refuse(format!(
			"num_experts_per_tok {per_token} must be between 1 and the {pickable} experts of the \
			 {topk_groups} groups a token may use"
		)));
	}
	if let Some(freq) = opt_usize(json, &["moe_layer_freq"]).filter(|f| *f != 1) {
		return Err(refuse(format!("moe_layer_freq {freq} is not supported (1)")));
	}
	let experts = Experts {
		routed,
		per_token,
		shared: opt_usize(json, &["n_shared_experts"]).unwrap_or(if v3 { 1 } else { 2 }),
		width: usize_field(json, &["moe_intermediate_size"])?,
		first_layer: opt_usize(json, &["first_k_dense_replace"]).unwrap_or(if v3 { 3 } else { 0 }),
		groups,
		topk_groups,
		scaling: f64_field(json, &["routed_scaling_factor"], if v3 { 2.5 } else { 1.0 }),
		routing,
	};
	if experts.shared == 0 {
		return Err(refuse("n_shared_experts must be at least 1".into()));
	}
	Ok(ModelConfig {
		family,
		vocab_size: usize_field(json, &["vocab_size"])?,
		hidden_size,
		intermediate_size: usize_field(json, &["intermediate_size"])?,
		num_layers: usize_field(json, &["num_hidden_layers"])?,
		num_heads,
		num_kv_heads: num_heads,
		head_dim: nope_dim + rope_dim,
		max_positions,
		norm: Norm::Rms,
		norm_eps: f64_field(json, &["rms_norm_eps"], 1e-6),
		positions: Positions::Rope {
			theta,
			rotary_dim: rope_dim,
			// V2 turns adjacent pairs; V3 does too unless `rope_interleave` is false. (Both
			// then lay the turned pairs out differently, identically for queries and keys, so
			// their products do not see it.)
			interleaved: !v3 || bool_field(json, "rope_interleave", true),
			scaling,
		},
		mlp: Mlp::GatedSilu,
		qkv: QkvLayout::Separate,
		qkv_bias: false,
		dense_bias: !v3 && bool_field(json, "mlp_bias", false),
		qk_norm: false,
		sliding_window: None,
		tie_word_embeddings: bool_field(json, "tie_word_embeddings", false),
		embedding_norm: false,
		conv1d_weights: false,
		latent_attention: Some(LatentAttention {
			q_rank: opt_usize(json, &["q_lora_rank"]),
			kv_rank: usize_field(json, &["kv_lora_rank"])?,
			nope_dim,
			rope_dim,
			value_dim,
			bias: bool_field(json, "attention_bias", false),
			softmax_scale,
		}),
		experts: Some(experts),
		eos_token_id: token_field(json, "eos_token_id"),
		bos_token_id: token_field(json, "bos_token_id"),
	})
}
