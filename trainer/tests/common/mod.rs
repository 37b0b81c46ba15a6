//! Tiny random checkpoints in Hugging Face layout, one per family, written the way
//! `save_pretrained` lays them out, so the tests load them through the real loader.

#![allow(dead_code, unreachable_pub)]

use candle_core::{Device, Tensor};
use provenant_trainer::rng::Rng;
use serde_json::{json, Value};
use std::{collections::BTreeMap, path::Path};

pub const VOCAB: usize = 64;
pub const HIDDEN: usize = 32;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 8;
pub const FFN: usize = 64;
pub const LAYERS: usize = 2;
pub const POSITIONS: usize = 64;

pub const FAMILIES: [&str; 9] = [
	"llama",
	"mistral",
	"qwen2",
	"qwen3",
	"gpt2",
	"bloom",
	"chatglm",
	"deepseek_v2",
	"deepseek_v3",
];

/// The tiny DeepSeek configs' latent attention and experts. V2 has no query compression and
/// values wider than query/key heads, V3 the reverse, so both paddings are exercised.
pub const KV_RANK: usize = 16;
pub const Q_RANK: usize = 16;
pub const NOPE_DIM: usize = 8;
pub const ROPE_DIM: usize = 4;
pub const EXPERTS: usize = 8;
pub const EXPERT_FFN: usize = 16;

/// V2's and V3's value width.
pub fn value_dim(family: &str) -> usize {
	if family == "deepseek_v2" {
		16
	} else {
		6
	}
}

/// Shared experts of the tiny DeepSeek configs.
fn shared_experts(family: &str) -> usize {
	if family == "deepseek_v2" {
		2
	} else {
		1
	}
}

/// Words of the test tokenizer; ids 0 and 1 are `[UNK]` and `</s>`.
pub const WORDS: &[&str] = &[
	"the", "a", "river", "stone", "is", "was", "blue", "green", "capital", "of", "zorbia", "city",
	"quiet", "runs", "under", "bridge", "what", "called", "name", "tell", "me", "about", "it",
	"and", "old", "new", "north", "south", "water", "light", "song", "bird", "sings", "at", "dawn",
	"in", "valley", "far", "near", "hill", "sun", "moon", "star", "over", "sea", "wind", "cold",
	"warm", "day", "night", "?", ".",
];

pub fn config(family: &str) -> Value {
	match family {
		"llama" | "mistral" | "qwen2" | "qwen3" => {
			let mut c = json!({
				"model_type": family,
				"vocab_size": VOCAB,
				"hidden_size": HIDDEN,
				"intermediate_size": FFN,
				"num_hidden_layers": LAYERS,
				"num_attention_heads": HEADS,
				"num_key_value_heads": KV_HEADS,
				"max_position_embeddings": POSITIONS,
				"rms_norm_eps": 1e-6,
				"rope_theta": 10000.0,
				"hidden_act": "silu",
				"tie_word_embeddings": false,
				"bos_token_id": null,
				"eos_token_id": 1,
			});
			// candle-transformers' configs have no defaults for these.
			if family == "mistral" {
				c["sliding_window"] = json!(POSITIONS);
				c["head_dim"] = json!(HEAD_DIM);
			}
			if family == "qwen2" || family == "qwen3" {
				c["sliding_window"] = json!(POSITIONS);
				c["max_window_layers"] = json!(LAYERS);
				c["use_sliding_window"] = json!(false);
			}
			if family == "qwen3" {
				c["head_dim"] = json!(HEAD_DIM);
				c["attention_bias"] = json!(false);
			}
			c
		},
		"gpt2" => json!({
			"model_type": "gpt2", "vocab_size": VOCAB, "n_embd": HIDDEN, "n_layer": LAYERS,
			"n_head": HEADS, "n_positions": POSITIONS, "n_inner": null, "layer_norm_epsilon": 1e-5,
			"activation_function": "gelu_new", "eos_token_id": 1, "bos_token_id": 1,
		}),
		"bloom" => json!({
			"model_type": "bloom", "vocab_size": VOCAB, "hidden_size": HIDDEN, "n_layer": LAYERS,
			"n_head": HEADS, "layer_norm_epsilon": 1e-5, "eos_token_id": 1, "bos_token_id": 1,
			"seq_length": POSITIONS,
		}),
		"chatglm" => json!({
			"model_type": "chatglm", "padded_vocab_size": VOCAB, "hidden_size": HIDDEN,
			"ffn_hidden_size": FFN, "kv_channels": HEAD_DIM, "num_attention_heads": HEADS,
			"num_layers": LAYERS, "seq_length": POSITIONS, "layernorm_epsilon": 1e-5, "rmsnorm": true,
			"add_bias_linear": false, "add_qkv_bias": true, "multi_query_attention": true,
			"multi_query_group_num": KV_HEADS, "apply_residual_connection_post_layernorm": false,
			"post_layer_norm": true, "eos_token_id": 1,
		}),
		"deepseek_v2" => json!({
			"model_type": "deepseek_v2", "architectures": ["DeepseekV2ForCausalLM"],
			"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": FFN,
			"num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
			"q_lora_rank": null, "kv_lora_rank": KV_RANK, "qk_nope_head_dim": NOPE_DIM,
			"qk_rope_head_dim": ROPE_DIM, "v_head_dim": value_dim(family),
			"n_routed_experts": EXPERTS, "n_shared_experts": shared_experts(family),
			"moe_intermediate_size": EXPERT_FFN, "num_experts_per_tok": 2,
			"first_k_dense_replace": 1, "topk_method": "group_limited_greedy", "n_group": 2,
			"topk_group": 1, "routed_scaling_factor": 1.5, "norm_topk_prob": false,
			"max_position_embeddings": POSITIONS, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
			"hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
			"tie_word_embeddings": false, "bos_token_id": null, "eos_token_id": 1,
		}),
		// With YaRN: at this rotary width one frequency is kept and one slowed, and both the
		// cosines and the softmax are rescaled.
		"deepseek_v3" => json!({
			"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"],
			"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": FFN,
			"num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
			"q_lora_rank": Q_RANK, "kv_lora_rank": KV_RANK, "qk_nope_head_dim": NOPE_DIM,
			"qk_rope_head_dim": ROPE_DIM, "v_head_dim": value_dim(family),
			"n_routed_experts": EXPERTS, "n_shared_experts": shared_experts(family),
			"moe_intermediate_size": EXPERT_FFN, "num_experts_per_tok": 2,
			"first_k_dense_replace": 1, "n_group": 2, "topk_group": 1,
			"routed_scaling_factor": 2.5, "norm_topk_prob": true, "rope_interleave": true,
			"max_position_embeddings": POSITIONS, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
			"rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
				"beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 1.0},
			"hidden_act": "silu", "attention_bias": false, "tie_word_embeddings": false,
			"bos_token_id": null, "eos_token_id": 1,
		}),
		other => panic!("no test config for {other}"),
	}
}

#[derive(Clone, Copy)]
enum Init {
	Weight,
	Norm,
	Bias,
}

/// The tensors of `family`'s checkpoint, named and shaped as its `save_pretrained` writes them.
fn layout(family: &str) -> Vec<(String, Vec<usize>, Init)> {
	use Init::*;
	let (h, f, v, p) = (HIDDEN, FFN, VOCAB, POSITIONS);
	let q = HEADS * HEAD_DIM;
	let kv = KV_HEADS * HEAD_DIM;
	let mut out: Vec<(String, Vec<usize>, Init)> = Vec::new();
	let mut add =
		|name: String, shape: &[usize], init: Init| out.push((name, shape.to_vec(), init));
	match family {
		"llama" | "mistral" | "qwen2" | "qwen3" => {
			add("model.embed_tokens.weight".into(), &[v, h], Weight);
			for i in 0..LAYERS {
				let l = format!("model.layers.{i}");
				add(format!("{l}.input_layernorm.weight"), &[h], Norm);
				for (m, out_dim) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
					add(format!("{l}.self_attn.{m}.weight"), &[out_dim, h], Weight);
					if family == "qwen2" {
						add(format!("{l}.self_attn.{m}.bias"), &[out_dim], Bias);
					}
				}
				add(format!("{l}.self_attn.o_proj.weight"), &[h, q], Weight);
				if family == "qwen3" {
					add(format!("{l}.self_attn.q_norm.weight"), &[HEAD_DIM], Norm);
					add(format!("{l}.self_attn.k_norm.weight"), &[HEAD_DIM], Norm);
				}
				add(format!("{l}.post_attention_layernorm.weight"), &[h], Norm);
				add(format!("{l}.mlp.gate_proj.weight"), &[f, h], Weight);
				add(format!("{l}.mlp.up_proj.weight"), &[f, h], Weight);
				add(format!("{l}.mlp.down_proj.weight"), &[h, f], Weight);
			}
			add("model.norm.weight".into(), &[h], Norm);
			add("lm_head.weight".into(), &[v, h], Weight);
		},
		// Hub GPT-2 checkpoints have no `transformer.` prefix and Conv1D weights `[in, out]`.
		"gpt2" => {
			add("wte.weight".into(), &[v, h], Weight);
			add("wpe.weight".into(), &[p, h], Weight);
			for i in 0..LAYERS {
				let l = format!("h.{i}");
				for ln in ["ln_1", "ln_2"] {
					add(format!("{l}.{ln}.weight"), &[h], Norm);
					add(format!("{l}.{ln}.bias"), &[h], Bias);
				}
				for (m, i_dim, o_dim) in [
					("attn.c_attn", h, 3 * h),
					("attn.c_proj", h, h),
					("mlp.c_fc", h, 4 * h),
					("mlp.c_proj", 4 * h, h),
				] {
					add(format!("{l}.{m}.weight"), &[i_dim, o_dim], Weight);
					add(format!("{l}.{m}.bias"), &[o_dim], Bias);
				}
			}
			add("ln_f.weight".into(), &[h], Norm);
			add("ln_f.bias".into(), &[h], Bias);
		},
		"bloom" => {
			add("transformer.word_embeddings.weight".into(), &[v, h], Weight);
			let norms = |l: &str| vec![format!("{l}.weight"), format!("{l}.bias")];
			for (n, init) in
				norms("transformer.word_embeddings_layernorm").into_iter().zip([Norm, Bias])
			{
				add(n, &[h], init);
			}
			for i in 0..LAYERS {
				let l = format!("transformer.h.{i}");
				for ln in ["input_layernorm", "post_attention_layernorm"] {
					add(format!("{l}.{ln}.weight"), &[h], Norm);
					add(format!("{l}.{ln}.bias"), &[h], Bias);
				}
				for (m, i_dim, o_dim) in [
					("self_attention.query_key_value", h, 3 * h),
					("self_attention.dense", h, h),
					("mlp.dense_h_to_4h", h, 4 * h),
					("mlp.dense_4h_to_h", 4 * h, h),
				] {
					add(format!("{l}.{m}.weight"), &[o_dim, i_dim], Weight);
					add(format!("{l}.{m}.bias"), &[o_dim], Bias);
				}
			}
			add("transformer.ln_f.weight".into(), &[h], Norm);
			add("transformer.ln_f.bias".into(), &[h], Bias);
		},
		"chatglm" => {
			add("transformer.embedding.word_embeddings.weight".into(), &[v, h], Weight);
			for i in 0..LAYERS {
				let l = format!("transformer.encoder.layers.{i}");
				add(format!("{l}.input_layernorm.weight"), &[h], Norm);
				add(format!("{l}.self_attention.query_key_value.weight"), &[q + 2 * kv, h], Weight);
				add(format!("{l}.self_attention.query_key_value.bias"), &[q + 2 * kv], Bias);
				add(format!("{l}.self_attention.dense.weight"), &[h, q], Weight);
				add(format!("{l}.post_attention_layernorm.weight"), &[h], Norm);
				add(format!("{l}.mlp.dense_h_to_4h.weight"), &[2 * f, h], Weight);
				add(format!("{l}.mlp.dense_4h_to_h.weight"), &[h, f], Weight);
			}
			add("transformer.encoder.final_layernorm.weight".into(), &[h], Norm);
			add("transformer.output_layer.weight".into(), &[v, h], Weight);
		},
		"deepseek_v2" | "deepseek_v3" => {
			let heads_width = |per_head: usize| HEADS * per_head;
			let (query, value) = (heads_width(NOPE_DIM + ROPE_DIM), heads_width(value_dim(family)));
			let shared = EXPERT_FFN * shared_experts(family);
			add("model.embed_tokens.weight".into(), &[v, h], Weight);
			for i in 0..LAYERS {
				let l = format!("model.layers.{i}");
				let a = format!("{l}.self_attn");
				add(format!("{l}.input_layernorm.weight"), &[h], Norm);
				if family == "deepseek_v2" {
					add(format!("{a}.q_proj.weight"), &[query, h], Weight);
				} else {
					add(format!("{a}.q_a_proj.weight"), &[Q_RANK, h], Weight);
					add(format!("{a}.q_a_layernorm.weight"), &[Q_RANK], Norm);
					add(format!("{a}.q_b_proj.weight"), &[query, Q_RANK], Weight);
				}
				add(format!("{a}.kv_a_proj_with_mqa.weight"), &[KV_RANK + ROPE_DIM, h], Weight);
				add(format!("{a}.kv_a_layernorm.weight"), &[KV_RANK], Norm);
				let kv = heads_width(NOPE_DIM + value_dim(family));
				add(format!("{a}.kv_b_proj.weight"), &[kv, KV_RANK], Weight);
				add(format!("{a}.o_proj.weight"), &[h, value], Weight);
				add(format!("{l}.post_attention_layernorm.weight"), &[h], Norm);
				let mut mlp = |path: String, width: usize| {
					add(format!("{path}.gate_proj.weight"), &[width, h], Weight);
					add(format!("{path}.up_proj.weight"), &[width, h], Weight);
					add(format!("{path}.down_proj.weight"), &[h, width], Weight);
				};
				if i == 0 {
					mlp(format!("{l}.mlp"), f);
					continue;
				}
				for e in 0..EXPERTS {
					mlp(format!("{l}.mlp.experts.{e}"), EXPERT_FFN);
				}
				mlp(format!("{l}.mlp.shared_experts"), shared);
				add(format!("{l}.mlp.gate.weight"), &[EXPERTS, h], Weight);
				if family == "deepseek_v3" {
					add(format!("{l}.mlp.gate.e_score_correction_bias"), &[EXPERTS], Bias);
				}
			}
			add("model.norm.weight".into(), &[h], Norm);
			add("lm_head.weight".into(), &[v, h], Weight);
		},
		other => panic!("no layout for {other}"),
	}
	out
}

/// Random tensors for `family`, reproducible from `seed`.
pub fn tensors(family: &str, seed: u64) -> BTreeMap<String, Tensor> {
	let mut rng = Rng::new(seed);
	layout(family)
		.into_iter()
		.map(|(name, shape, init)| {
			let n: usize = shape.iter().product();
			let values: Vec<f32> = match init {
				// Large enough that attention is far from uniform and every path matters.
				Init::Weight => rng.uniform_vec(n, 0.35),
				Init::Norm => rng.uniform_vec(n, 0.2).into_iter().map(|x| 1.0 + x).collect(),
				Init::Bias => rng.uniform_vec(n, 0.1),
			};
			(name, Tensor::from_vec(values, shape, &Device::Cpu).unwrap())
		})
		.collect()
}

pub fn tokenizer_json(extra_tokens: usize) -> Value {
	let mut vocab = serde_json::Map::new();
	vocab.insert("[UNK]".into(), json!(0));
	vocab.insert("</s>".into(), json!(1));
	for (i, w) in WORDS.iter().enumerate() {
		vocab.insert(w.to_string(), json!(i + 2));
	}
	for i in 0..extra_tokens {
		vocab.insert(format!("extra{i}"), json!(WORDS.len() + 2 + i));
	}
	json!({
		"version": "1.0", "truncation": null, "padding": null,
		"added_tokens": [{"id": 1, "content": "</s>", "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true}],
		"normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
		"decoder": null,
		"model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
	})
}

/// Writes `family`'s tiny checkpoint into `dir`: config.json, model.safetensors, tokenizer.json.
pub fn write_checkpoint(family: &str, dir: &Path, seed: u64) {
	std::fs::create_dir_all(dir).unwrap();
	std::fs::write(dir.join("config.json"), config(family).to_string()).unwrap();
	candle_core::safetensors::save(
		&tensors(family, seed).into_iter().collect(),
		dir.join("model.safetensors"),
	)
	.unwrap();
	std::fs::write(dir.join("tokenizer.json"), tokenizer_json(0).to_string()).unwrap();
}

/// A fixed token sequence using most of the vocabulary.
pub fn sample_ids(len: usize) -> Vec<u32> {
	(0..len).map(|i| ((i * 7 + 3) % (WORDS.len() + 2)) as u32).collect()
}
