//! One differentiable decoder for every supported family.
//!
//! The block is the pre-norm transformer of GPT-2 (Radford et al., 2019) with the switches of
//! [`ModelConfig`]: RMSNorm or LayerNorm; rotary (Su et al., 2021; half-split as in HF LLaMA, or
//! interleaved on half of each head as in ChatGLM), learned or ALiBi (Press et al., 2022)
//! positions; separate, concatenated or per-head fused q/k/v; grouped-query attention; a
//! sliding window (Mistral); per-head q/k RMSNorm (Qwen3); a SiLU-gated or a GELU MLP.
//!
//! Unlike candle-transformers' inference models it returns logits for **every** position and
//! every op has a backward. On the CPU those are the fused kernels of [`crate::cpu`], each with
//! a hand-written backward pass; elsewhere they are candle's composed ops that record one
//! (`ops::softmax`, `rms_norm_slow`, `layer_norm_slow`, `rope_slow`/`rope_i_slow`). candle's own
//! fused kernels (`softmax_last_dim`, `rms_norm`, `rope`, …) would let `backward()` succeed while
//! silently giving the LoRA matrices no gradient.

use crate::{
	adapter::LoraSettings,
	config::{Mlp, ModelConfig, Norm, Positions, QkvLayout},
	cpu::{
		attention::CausalAttention,
		heads::{HeadPart, RopeTables, SplitHeads},
		loss::LinearCrossEntropy,
		mlp::Activation,
	},
	linear::{ForwardMode, FrozenWeight, Linear, LinearGroup, Lora},
	quant::QuantKind,
	rng::Rng,
	Error, Result,
};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{ops, rotary_emb};
use std::sync::Arc;

/// Where the base weights come from: a checkpoint's tensors by name, as `f32` on the device.
pub trait WeightSource {
	/// The tensor called `name`, or `None` when the checkpoint has no such tensor.
	fn tensor(&self, name: &str, device: &Device) -> Result<Option<Tensor>>;

	/// Every tensor's name, as `tensor` accepts it.
	fn names(&self) -> Vec<String>;
}

/// How the model is built around its frozen base.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
	/// LoRA on the targeted layers; `None` for the plain base model.
	pub lora: Option<LoraSettings>,
	/// Store the frozen linear weights quantised (QLoRA).
	pub quant: Option<QuantKind>,
	/// Seed for the adapters' initial `A`.
	pub seed: u64,
}

struct Loader<'a> {
	cfg: &'a ModelConfig,
	source: &'a dyn WeightSource,
	device: &'a Device,
	options: &'a BuildOptions,
	next_index: u64,
}

impl Loader<'_> {
	fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
		// GPT-2 and BLOOM checkpoints on the hub are saved from the bare model, without the
		// `transformer.` prefix their causal-LM class (and so PEFT) uses.
		let bare = name.strip_prefix("transformer.");
		let tensor = match self.source.tensor(name, self.device)? {
			Some(t) => t,
			None => match bare {
				Some(bare) => self.source.tensor(bare, self.device)?,
				None => None,
			}
			.ok_or_else(|| Error::MissingTensor(name.to_string()))?,
		};
		if tensor.dims() != shape {
			return Err(Error::ShapeMismatch {
				name: name.to_string(),
				expected: shape.to_vec(),
				actual: tensor.dims().to_vec(),
			});
		}
		Ok(tensor)
	}

	fn norm(&self, path: &str, width: usize, kind: Norm) -> Result<NormLayer> {
		Ok(NormLayer {
			weight: self.get(&format!("{path}.weight"), &[width])?,
			bias: match kind {
				Norm::Layer => Some(self.get(&format!("{path}.bias"), &[width])?),
				Norm::Rms => None,
			},
			eps: self.cfg.norm_eps as f32,
		})
	}

	/// A linear layer `[out, in]` at `path`, quantised for QLoRA, with LoRA if `path`'s last
	/// segment is targeted.
	fn linear(&mut self, path: &str, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
		let mut linear = self.dense_linear(path, in_dim, out_dim, bias)?;
		if let Some(kind) = self.options.quant {
			linear.weight = linear.weight.quantize(kind)?;
		}
		Ok(linear)
	}

	/// Layers that read one input, as one [`LinearGroup`]: each `(path, out)` of width `in_dim`.
	fn group(
		&mut self,
		layers: &[(String, usize)],
		in_dim: usize,
		bias: bool,
	) -> Result<LinearGroup> {
		let members = layers
			.iter()
			.map(|(path, out_dim)| self.dense_linear(path, in_dim, *out_dim, bias))
			.collect::<Result<Vec<_>>>()?;
		LinearGroup::new(members, self.options.quant, self.device)
	}

	/// [`Loader::linear`] with the weight left dense.
	fn dense_linear(
		&mut self,
		path: &str,
		in_dim: usize,
		out_dim: usize,
		bias: bool,
	) -> Result<Linear> {
		let weight = if self.cfg.conv1d_weights {
			self.get(&format!("{path}.weight"), &[in_dim, out_dim])?.t()?.contiguous()?
		} else {
			self.get(&format!("{path}.weight"), &[out_dim, in_dim])?
		};
		let bias = if bias { Some(self.get(&format!("{path}.bias"), &[out_dim])?) } else { None };
		let weight = FrozenWeight::Dense(weight);
		let index = self.next_index;
		self.next_index += 1;
		let module = path.rsplit('.').next().unwrap_or(path);
		let lora = match &self.options.lora {
			Some(settings) if settings.targets.iter().any(|t| t == module) => {
				let mut rng = Rng::derive(self.options.seed, &[0x10A, index]);
				Some(Lora::new(
					&mut rng,
					(out_dim, in_dim),
					settings.rank,
					settings.alpha,
					settings.use_rslora,
					settings.dropout,
					self.device,
				)?)
			},
			_ => None,
		};
		Ok(Linear { path: path.to_string(), index, weight, bias, lora })
	}
}

#[derive(Clone, Debug)]
struct NormLayer {
	weight: Tensor,
	bias: Option<Tensor>,
	eps: f32,
}

impl NormLayer {
	fn forward(&self, x: &Tensor, mode: ForwardMode) -> Result<Tensor> {
		if mode.kernels.fused_on(x.device()) {
			return Ok(x.contiguous()?.apply_op1(crate::cpu::norm::Norm {
				weight: self.weight.to_vec1()?,
				bias: self.bias.as_ref().map(|b| b.to_vec1()).transpose()?,
				centered: self.bias.is_some(),
				eps: self.eps,
			})?);
		}
		Ok(match &self.bias {
			Some(bias) => ops::layer_norm_slow(x, &self.weight, bias, self.eps)?,
			None => ops::rms_norm_slow(x, &self.weight, self.eps)?,
		})
	}
}

#[derive(Clone, Debug)]
struct Attention {
	/// q, k and v as one product (separate layers stacked, or the family's fused one).
	qkv: LinearGroup,
	out: Linear,
	q_norm: Option<NormLayer>,
	k_norm: Option<NormLayer>,
}

#[derive(Clone, Debug)]
enum FeedForward {
	/// `gate_up` yields the gate then the up projection side by side.
	Gated {
		gate_up: LinearGroup,
		down: Linear,
	},
	Gelu {
		fc: Linear,
		proj: Linear,
	},
}

#[derive(Clone, Debug)]
struct Block {
	attn_norm: NormLayer,
	attention: Attention,
	mlp_norm: NormLayer,
	mlp: FeedForward,
}

/// Keys and values of the positions seen so far, one entry per layer, for generation.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
	layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
	/// Positions cached.
	pub fn len(&self) -> usize {
		self.layers
			.first()
			.and_then(|l| l.as_ref())
			.map(|(k, _)| k.dim(2).unwrap_or(0))
			.unwrap_or(0)
	}

	/// Whether nothing is cached yet.
	pub fn is_empty(&self) -> bool {
		self.len() == 0
	}
}

/// The decoder with its frozen base and its adapters.
#[derive(Clone, Debug)]
pub struct Model {
	/// The configuration it was built from.
	pub cfg: ModelConfig,
	device: Device,
	embed: Tensor,
	positions: Option<Tensor>,
	embedding_norm: Option<NormLayer>,
	blocks: Vec<Block>,
	final_norm: NormLayer,
	lm_head: Linear,
	/// `cos` and `sin`, `[max_positions, rotary_dim / 2]`.
	rope: Option<RopeTables>,
	/// ALiBi's slope for each head.
	alibi_slopes: Option<Arc<Vec<f32>>>,
}

/// The module paths of one family's checkpoints.
struct Paths {
	embed: String,
	positions: Option<String>,
	embedding_norm: Option<String>,
	layer: fn(usize) -> String,
	attn_norm: &'static str,
	mlp_norm: &'static str,
	attention: &'static str,
	/// The fused q/k/v projection, for families that have one.
	fused_qkv: &'static str,
	attn_out: &'static str,
	/// The MLP's input and output projections, for the ungated and fused-gated MLPs.
	mlp_in: &'static str,
	mlp_out: &'static str,
	final_norm: String,
	lm_head: Option<String>,
}

fn paths(cfg: &ModelConfig) -> Paths {
	use crate::config::Family::*;
	match cfg.family {
		Llama | Mistral | Qwen2 | Qwen3 => Paths {
			embed: "model.embed_tokens".into(),
			positions: None,
			embedding_norm: None,
			layer: |i| format!("model.layers.{i}"),
			attn_norm: "input_layernorm",
			mlp_norm: "post_attention_layernorm",
			attention: "self_attn",
			fused_qkv: "",
			attn_out: "o_proj",
			mlp_in: "",
			mlp_out: "",
			final_norm: "model.norm".into(),
			lm_head: (!cfg.tie_word_embeddings).then(|| "lm_head".into()),
		},
		Gpt2 => Paths {
			embed: "transformer.wte".into(),
			positions: Some("transformer.wpe".into()),
			embedding_norm: None,
			layer: |i| format!("transformer.h.{i}"),
			attn_norm: "ln_1",
			mlp_norm: "ln_2",
			attention: "attn",
			fused_qkv: "c_attn",
			attn_out: "c_proj",
			mlp_in: "c_fc",
			mlp_out: "c_proj",
			final_norm: "transformer.ln_f".into(),
			lm_head: None,
		},
		Bloom => Paths {
			embed: "transformer.word_embeddings".into(),
			positions: None,
			embedding_norm: Some("transformer.word_embeddings_layernorm".into()),
			layer: |i| format!("transformer.h.{i}"),
			attn_norm: "input_layernorm",
			mlp_norm: "post_attention_layernorm",
			attention: "self_attention",
			fused_qkv: "query_key_value",
			attn_out: "dense",
			mlp_in: "dense_h_to_4h",
			mlp_out: "dense_4h_to_h",
			final_norm: "transformer.ln_f".into(),
			lm_head: None,
		},
		ChatGlm => Paths {
			embed: "transformer.embedding.word_embeddings".into(),
			positions: None,
			embedding_norm: None,
			layer: |i| format!("transformer.encoder.layers.{i}"),
			attn_norm: "input_layernorm",
			mlp_norm: "post_attention_layernorm",
			attention: "self_attention",
			fused_qkv: "query_key_value",
			attn_out: "dense",
			mlp_in: "dense_h_to_4h",
			mlp_out: "dense_4h_to_h",
			final_norm: "transformer.encoder.final_layernorm".into(),
			lm_head: Some("transformer.output_layer".into()),
		},
	}
}

/// Inverse frequencies of the rotary embedding, LLaMA 3's scaling applied.
fn rope_inverse_frequencies(
	theta: f64,
	rotary_dim: usize,
	llama3: Option<(f64, f64, f64, usize)>,
) -> Vec<f32> {
	(0..rotary_dim / 2)
		.map(|j| {
			let freq = 1.0 / theta.powf(2.0 * j as f64 / rotary_dim as f64);
			let Some((factor, low, high, original)) = llama3 else { return freq as f32 };
			let wavelen = 2.0 * std::f64::consts::PI / freq;
			let (low_wavelen, high_wavelen) = (original as f64 / low, original as f64 / high);
			(if wavelen < high_wavelen {
				freq
			} else if wavelen > low_wavelen {
				freq / factor
			} else {
				let smooth = (original as f64 / wavelen - low) / (high - low);
				(1.0 - smooth) * freq / factor + smooth * freq
			}) as f32
		})
		.collect()
}

/// ALiBi's head slopes, as BLOOM's `build_alibi_tensor` computes them for any head count.
pub fn alibi_slopes(heads: usize) -> Vec<f32> {
	let closest = 1usize << (usize::BITS - 1 - heads.leading_zeros());
	let base = |n: usize| 2f64.powf(-(2f64.powf(-((n as f64).log2() - 3.0))));
	let mut slopes: Vec<f32> = (1..=closest).map(|p| base(closest).powi(p as i32) as f32).collect();
	if closest != heads {
		let extra = base(2 * closest);
		let remaining = (heads - closest).min(closest);
		slopes.extend((0..remaining).map(|i| extra.powi(1 + 2 * i as i32) as f32));
	}
	slopes
}

impl Model {
	/// Builds the model from `source`.
	pub fn load(
		cfg: &ModelConfig,
		source: &dyn WeightSource,
		device: &Device,
		options: &BuildOptions,
	) -> Result<Self> {
		let mut loader = Loader { cfg, source, device, options, next_index: 0 };
		let names = paths(cfg);
		let h = cfg.hidden_size;
		let embed = loader.get(&format!("{}.weight", names.embed), &[cfg.vocab_size, h])?;
		let positions = match &names.positions {
			Some(p) => Some(loader.get(&format!("{p}.weight"), &[cfg.max_positions, h])?),
			None => None,
		};
		let embedding_norm = match &names.embedding_norm {
			Some(p) => Some(loader.norm(p, h, cfg.norm)?),
			None => None,
		};
		let (q_width, kv_width) = cfg.qkv_width();
		let mut blocks = Vec::with_capacity(cfg.num_layers);
		for layer in 0..cfg.num_layers {
			let base = (names.layer)(layer);
			let attn = format!("{base}.{}", names.attention);
			let qkv_layers = match cfg.qkv {
				QkvLayout::Separate => vec![
					(format!("{attn}.q_proj"), q_width),
					(format!("{attn}.k_proj"), kv_width),
					(format!("{attn}.v_proj"), kv_width),
				],
				QkvLayout::Concatenated | QkvLayout::PerHead => {
					vec![(format!("{attn}.{}", names.fused_qkv), q_width + 2 * kv_width)]
				},
			};
			let qkv = loader.group(&qkv_layers, h, cfg.qkv_bias)?;
			let out =
				loader.linear(&format!("{attn}.{}", names.attn_out), q_width, h, cfg.dense_bias)?;
			let (q_norm, k_norm) = if cfg.qk_norm {
				(
					Some(loader.norm(&format!("{attn}.q_norm"), cfg.head_dim, Norm::Rms)?),
					Some(loader.norm(&format!("{attn}.k_norm"), cfg.head_dim, Norm::Rms)?),
				)
			} else {
				(None, None)
			};
			let f = cfg.intermediate_size;
			let mlp_path = format!("{base}.mlp");
			let (mlp_in, mlp_out) =
				(format!("{mlp_path}.{}", names.mlp_in), format!("{mlp_path}.{}", names.mlp_out));
			let mlp = match cfg.mlp {
				Mlp::GatedSilu => FeedForward::Gated {
					gate_up: loader.group(
						&[(format!("{mlp_path}.gate_proj"), f), (format!("{mlp_path}.up_proj"), f)],
						h,
						cfg.dense_bias,
					)?,
					down: loader.linear(&format!("{mlp_path}.down_proj"), f, h, cfg.dense_bias)?,
				},
				Mlp::FusedGatedSilu => FeedForward::Gated {
					gate_up: loader.group(&[(mlp_in.clone(), 2 * f)], h, cfg.dense_bias)?,
					down: loader.linear(&mlp_out, f, h, cfg.dense_bias)?,
				},
				Mlp::GeluTanh => FeedForward::Gelu {
					fc: loader.linear(&mlp_in, h, f, true)?,
					proj: loader.linear(&mlp_out, f, h, true)?,
				},
			};
			blocks.push(Block {
				attn_norm: loader.norm(&format!("{base}.{}", names.attn_norm), h, cfg.norm)?,
				attention: Attention { qkv, out, q_norm, k_norm },
				mlp_norm: loader.norm(&format!("{base}.{}", names.mlp_norm), h, cfg.norm)?,
				mlp,
			});
		}
		let final_norm = loader.norm(&names.final_norm, h, cfg.norm)?;
		// The output projection is never quantised or adapted: it is tied to the embedding in
		// most families, and PEFT's LoRA targets leave it alone.
		let lm_weight = match &names.lm_head {
			Some(p) => loader.get(&format!("{p}.weight"), &[cfg.vocab_size, h])?,
			None => embed.clone(),
		};
		let lm_head = Linear {
			path: names.lm_head.unwrap_or_else(|| names.embed.clone()),
			index: u64::MAX,
			weight: FrozenWeight::Dense(lm_weight),
			bias: None,
			lora: None,
		};
		let rope = match cfg.positions {
			Positions::Rope { theta, rotary_dim, interleaved, llama3_scaling } => {
				let inverse = rope_inverse_frequencies(theta, rotary_dim, llama3_scaling);
				let angles: Vec<f32> = (0..cfg.max_positions)
					.flat_map(|p| inverse.iter().map(move |f| p as f32 * f))
					.collect();
				Some(RopeTables {
					cos: Arc::new(angles.iter().map(|a| a.cos()).collect()),
					sin: Arc::new(angles.iter().map(|a| a.sin()).collect()),
					rotary_dim,
					interleaved,
				})
			},
			_ => None,
		};
		let alibi_slopes = matches!(cfg.positions, Positions::Alibi)
			.then(|| Arc::new(alibi_slopes(cfg.num_heads)));
		Ok(Self {
			cfg: cfg.clone(),
			device: device.clone(),
			embed,
			positions,
			embedding_norm,
			blocks,
			final_norm,
			lm_head,
			rope,
			alibi_slopes,
		})
	}

	/// The device the model lives on.
	pub fn device(&self) -> &Device {
		&self.device
	}

	/// Every linear layer, in model order.
	pub fn linears(&self) -> Vec<&Linear> {
		let mut out = Vec::new();
		for block in &self.blocks {
			out.extend(&block.attention.qkv.members);
			out.push(&block.attention.out);
			match &block.mlp {
				FeedForward::Gated { gate_up, down } => {
					out.extend(&gate_up.members);
					out.push(down);
				},
				FeedForward::Gelu { fc, proj } => out.extend([fc, proj]),
			}
		}
		out
	}

	/// The adapter's trainable tensors under their PEFT names, in model order: for each adapted
	/// layer `base_model.model.<path>.lora_A.weight` then `….lora_B.weight`.
	pub fn lora_vars(&self) -> Vec<(String, Var)> {
		self.linears()
			.into_iter()
			.filter_map(|l| l.lora.as_ref().map(|lora| (l, lora)))
			.flat_map(|(l, lora)| {
				[
					(format!("base_model.model.{}.lora_A.weight", l.path), lora.a.clone()),
					(format!("base_model.model.{}.lora_B.weight", l.path), lora.b.clone()),
				]
			})
			.collect()
	}

	/// The frozen tensors of the base, for checks that training never touches them.
	pub fn frozen_tensors(&self) -> Result<Vec<(String, Tensor)>> {
		let mut out = vec![("embed".to_string(), self.embed.clone())];
		for l in self.linears() {
			out.push((l.path.clone(), l.weight.dense(&self.device)?));
			if let Some(b) = &l.bias {
				out.push((format!("{}.bias", l.path), b.clone()));
			}
		}
		for (i, block) in self.blocks.iter().enumerate() {
			out.push((format!("{i}.attn_norm"), block.attn_norm.weight.clone()));
			out.push((format!("{i}.mlp_norm"), block.mlp_norm.weight.clone()));
		}
		out.push(("final_norm".into(), self.final_norm.weight.clone()));
		Ok(out)
	}

	/// Bytes held by the frozen linear weights (quantised or not).
	pub fn frozen_linear_bytes(&self) -> usize {
		self.linears().iter().map(|l| l.weight.bytes()).sum()
	}

	/// Every tensor of `source` under its stored name, with each adapted layer's weight
	/// replaced by `W + scale · B A` in the checkpoint's own layout: a full model that needs no
	/// adapter.
	pub fn merged_checkpoint(&self, source: &dyn WeightSource) -> Result<Vec<(String, Tensor)>> {
		let adapted: std::collections::HashMap<String, &Linear> = self
			.linears()
			.into_iter()
			.filter(|l| l.lora.is_some())
			.map(|l| (format!("{}.weight", l.path), l))
			.collect();
		let mut out = Vec::new();
		for name in source.names() {
			let canonical = if adapted.contains_key(&name) {
				name.clone()
			} else {
				format!("transformer.{name}")
			};
			let tensor = match adapted.get(&canonical) {
				Some(linear) => {
					let merged = linear.merged_weight(&self.device)?;
					if self.cfg.conv1d_weights {
						merged.t()?.contiguous()?
					} else {
						merged
					}
				},
				None => source
					.tensor(&name, &self.device)?
					.ok_or_else(|| Error::MissingTensor(name.clone()))?,
			};
			out.push((name, tensor));
		}
		Ok(out)
	}

	/// Logits `[batch, seq, vocab]` for `ids` `[batch, seq]`, for every position.
	///
	/// With a cache, `ids` continue the cached positions and their keys and values are added
	/// to it.
	pub fn forward(
		&self,
		ids: &Tensor,
		cache: Option<&mut KvCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let hidden = self.hidden_states(ids, cache, mode)?;
		self.lm_head.forward(&hidden, mode)
	}

	/// `Σ mask · −log p(target)` over every position of `ids` `[batch, seq]`, a scalar, with
	/// `targets` (`u32`) and `mask` (`f32`) of the same shape.
	///
	/// On the CPU the output layer and the loss are one fused op that never holds more than a
	/// chunk of the `[positions, vocab]` logits and skips masked positions.
	pub fn loss_sum(
		&self,
		ids: &Tensor,
		targets: &Tensor,
		mask: &Tensor,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let hidden = self.hidden_states(ids, None, mode)?;
		if mode.kernels.fused_on(&self.device) {
			let op = LinearCrossEntropy::new(
				self.lm_head.weight.dense(&self.device)?,
				targets.flatten_all()?.to_vec1()?,
				mask.flatten_all()?.to_vec1()?,
				mode.gradients && hidden.track_op(),
			);
			return Ok(hidden.contiguous()?.apply_op1(op)?);
		}
		let logits = self.lm_head.forward(&hidden, mode)?;
		let log_probs = ops::log_softmax(&logits, D::Minus1)?;
		let picked =
			log_probs.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?;
		Ok((picked * mask)?.sum_all()?.neg()?)
	}

	/// The final normed hidden states `[batch, seq, hidden]`, before the output layer.
	fn hidden_states(
		&self,
		ids: &Tensor,
		cache: Option<&mut KvCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let (_batch, seq) = ids.dims2()?;
		let offset = cache.as_ref().map(|c| c.len()).unwrap_or(0);
		if offset + seq > self.cfg.max_positions {
			return Err(Error::hyper(
				"cutoff_len",
				format!(
					"{} positions exceed the model's {} (max_position_embeddings)",
					offset + seq,
					self.cfg.max_positions
				),
			));
		}
		let mut x = self.embed.embedding(&ids.flatten_all()?)?.reshape((ids.dim(0)?, seq, ()))?;
		if let Some(pos) = &self.positions {
			x = x.broadcast_add(&pos.narrow(0, offset, seq)?)?;
		}
		if let Some(norm) = &self.embedding_norm {
			x = norm.forward(&x, mode)?;
		}
		// The fused attention masks as it goes; the composed one adds this tensor.
		let mask =
			if mode.kernels.fused_on(&self.device) { None } else { Some(self.mask(seq, offset)?) };
		let mut cache = cache;
		if let Some(c) = cache.as_deref_mut() {
			c.layers.resize(self.blocks.len(), None);
		}
		for (i, block) in self.blocks.iter().enumerate() {
			let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
			// Each sublayer's output projection adds onto the residual stream `x` itself.
			x = self.attention(
				block,
				&x,
				&block.attn_norm.forward(&x, mode)?,
				offset,
				mask.as_ref(),
				layer_cache,
				mode,
			)?;
			x = self.feed_forward(&block.mlp, &x, &block.mlp_norm.forward(&x, mode)?, mode)?;
		}
		self.final_norm.forward(&x, mode)
	}

	/// The additive causal mask `[seq, offset + seq]`: −∞ above the diagonal and, with a
	/// sliding window, at or beyond `window` positions back.
	fn mask(&self, seq: usize, offset: usize) -> Result<Tensor> {
		let total = offset + seq;
		let window = self.cfg.sliding_window.unwrap_or(usize::MAX);
		let values: Vec<f32> = (0..seq)
			.flat_map(|i| {
				let query = offset + i;
				(0..total).map(move |key| {
					if key > query || query - key >= window {
						f32::NEG_INFINITY
					} else {
						0.0
					}
				})
			})
			.collect();
		Ok(Tensor::from_vec(values, (seq, total), &self.device)?)
	}

	fn rotate(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
		let Some(RopeTables { cos, sin, rotary_dim, interleaved }) = &self.rope else {
			return Ok(x.clone());
		};
		let seq = x.dim(2)?;
		let half = rotary_dim / 2;
		let rows = |table: &[f32]| {
			Tensor::from_slice(
				&table[offset * half..(offset + seq) * half],
				(seq, half),
				&self.device,
			)
		};
		let (cos, sin) = (rows(cos)?, rows(sin)?);
		let head_dim = x.dim(3)?;
		let rotated = x.narrow(3, 0, *rotary_dim)?.contiguous()?;
		let rotated = if *interleaved {
			rotary_emb::rope_i_slow(&rotated, &cos, &sin)?
		} else {
			rotary_emb::rope_slow(&rotated, &cos, &sin)?
		};
		if *rotary_dim == head_dim {
			Ok(rotated)
		} else {
			let pass = x.narrow(3, *rotary_dim, head_dim - rotary_dim)?;
			Ok(Tensor::cat(&[&rotated, &pass], 3)?)
		}
	}

	/// `residual` plus attention over `x`.
	#[allow(clippy::too_many_arguments)]
	fn attention(
		&self,
		block: &Block,
		residual: &Tensor,
		x: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut Option<(Tensor, Tensor)>>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let cfg = &self.cfg;
		let (b, s, _) = x.dims3()?;
		let (hd, nh, nkv) = (cfg.head_dim, cfg.num_heads, cfg.num_kv_heads);
		let attn = &block.attention;
		let projected = attn.qkv.forward(x, mode)?;
		let fused = mode.kernels.fused_on(x.device());
		let scale = (1.0 / (hd as f64).sqrt()) as f32;
		if fused && cache.is_none() && attn.q_norm.is_none() {
			// Training: the attention op splits q, k and v into heads itself, so the projection's
			// output has a single consumer and a single gradient.
			let parts = vec![
				HeadPart { heads: nh, rotated: true },
				HeadPart { heads: nkv, rotated: true },
				HeadPart { heads: nkv, rotated: false },
			];
			let interleaved_parts = cfg.qkv == QkvLayout::PerHead;
			let split = SplitHeads {
				parts,
				head_dim: hd,
				rope: self.rope.clone(),
				interleaved_parts,
				offset,
			};
			let op = CausalAttention::new(scale, cfg.sliding_window, self.alibi_slopes.clone())
				.on_projection(split)?;
			return attn.out.forward_onto(
				residual,
				&projected.contiguous()?.apply_op1(op)?,
				None,
				mode,
			);
		}
		let (q, k, v) = if cfg.qkv == QkvLayout::PerHead {
			let per_head = projected.reshape((b, s, nh, 3, hd))?;
			let part =
				|i| -> Result<Tensor> { Ok(per_head.narrow(3, i, 1)?.reshape((b, s, nh * hd))?) };
			(part(0)?, part(1)?, part(2)?)
		} else {
			let (qw, kvw) = cfg.qkv_width();
			(
				projected.narrow(2, 0, qw)?,
				projected.narrow(2, qw, kvw)?,
				projected.narrow(2, qw + kvw, kvw)?,
			)
		};
		let (q, k, v) = if fused {
			// Normalising over the last dimension commutes with splitting the heads.
			let (mut q, mut k) = (q, k);
			if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
				q = qn.forward(&q.reshape((b, s, nh, hd))?, mode)?.reshape((b, s, nh * hd))?;
				k = kn.forward(&k.reshape((b, s, nkv, hd))?, mode)?.reshape((b, s, nkv * hd))?;
			}
			let split = |t: Tensor, heads: usize, rope: Option<RopeTables>| -> Result<Tensor> {
				Ok(t.contiguous()?.apply_op1(SplitHeads::single(heads, hd, rope, offset))?)
			};
			(
				split(q, nh, self.rope.clone())?,
				split(k, nkv, self.rope.clone())?,
				split(v, nkv, None)?,
			)
		} else {
			let heads = |t: Tensor, n: usize| -> Result<Tensor> {
				Ok(t.reshape((b, s, n, hd))?.transpose(1, 2)?.contiguous()?)
			};
			let (mut q, mut k, v) = (heads(q, nh)?, heads(k, nkv)?, heads(v, nkv)?);
			if let (Some(qn), Some(kn)) = (&attn.q_norm, &attn.k_norm) {
				q = qn.forward(&q, mode)?;
				k = kn.forward(&k, mode)?;
			}
			(self.rotate(&q, offset)?, self.rotate(&k, offset)?, v)
		};
		let (k, v) = match cache {
			Some(slot) => {
				let (k, v) = match slot.take() {
					Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
					None => (k, v),
				};
				*slot = Some((k.clone(), v.clone()));
				(k, v)
			},
			None => (k, v),
		};
		if fused {
			let op = CausalAttention::new(scale, cfg.sliding_window, self.alibi_slopes.clone());
			return attn.out.forward_onto(residual, &q.apply_op3(&k, &v, op)?, None, mode);
		}
		let total = k.dim(2)?;
		let repeat = |t: Tensor| -> Result<Tensor> {
			if nh == nkv {
				return Ok(t);
			}
			Ok(t.unsqueeze(2)?
				.broadcast_as((b, nkv, nh / nkv, total, hd))?
				.reshape((b, nh, total, hd))?)
		};
		let (k, v) = (repeat(k)?, repeat(v)?);
		let mut scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (hd as f64).sqrt()))?;
		if let Some(slopes) = &self.alibi_slopes {
			let slopes = Tensor::from_slice(slopes, (1, nh, 1, 1), &self.device)?;
			let key_positions =
				Tensor::arange(0u32, total as u32, &self.device)?.to_dtype(DType::F32)?;
			let bias = slopes.broadcast_mul(&key_positions.reshape((1, 1, 1, total))?)?;
			scores = scores.broadcast_add(&bias)?;
		}
		if let Some(mask) = mask {
			scores = scores.broadcast_add(mask)?;
		}
		let probs = ops::softmax(&scores, D::Minus1)?;
		let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, nh * hd))?;
		attn.out.forward_onto(residual, &context, None, mode)
	}

	/// `residual` plus the MLP of `x`.
	fn feed_forward(
		&self,
		mlp: &FeedForward,
		residual: &Tensor,
		x: &Tensor,
		mode: ForwardMode,
	) -> Result<Tensor> {
		match mlp {
			FeedForward::Gated { gate_up, down } => down.forward_onto(
				residual,
				&gate_up.forward(x, mode)?,
				Some(Activation::SiluGate),
				mode,
			),
			FeedForward::Gelu { fc, proj } => {
				proj.forward_onto(residual, &fc.forward(x, mode)?, Some(Activation::GeluTanh), mode)
			},
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	/// Reference: `build_alibi_tensor` in transformers' `modeling_bloom.py`; for 8 heads the
	/// slopes are 2^-1 … 2^-8, and 12 heads add the odd powers of 2^-0.5 from the 16-head set.
	#[test]
	fn alibi_slopes_match_bloom() {
		let eight = alibi_slopes(8);
		for (i, s) in eight.iter().enumerate() {
			assert!((s - 2f32.powi(-(i as i32 + 1))).abs() < 1e-7);
		}
		let twelve = alibi_slopes(12);
		assert_eq!(twelve.len(), 12);
		for (i, s) in twelve[8..].iter().enumerate() {
			assert!((s - 2f32.powf(-0.5 * (1 + 2 * i) as f32)).abs() < 1e-7, "{twelve:?}");
		}
	}
}
