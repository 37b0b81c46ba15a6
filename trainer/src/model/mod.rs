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

mod attention;
mod batch;
mod experts;
mod latent;

use crate::{
	adapter::LoraSettings,
	config::{
		Experts, LatentAttention as LatentConfig, Mlp, ModelConfig, Norm, Positions, QkvLayout,
		RopeScaling,
	},
	cpu::{
		gemm::{Half, MAX_F16_WEIGHT},
		heads::RopeTables,
		latent::LatentWidths,
		loss::LinearCrossEntropy,
		mlp::Activation,
	},
	frozen::FrozenWeight,
	linear::{ForwardMode, Linear, LinearGroup, Lora, RoutingLog},
	quant::QuantKind,
	rng::Rng,
	Error, Result,
};
use attention::{Attention, Heads, LayerCache};
pub use batch::Sequence;
use candle_core::{Device, Tensor, Var, D};
use candle_nn::ops;
use experts::{Expert, MixtureOfExperts};
use latent::{LatentAttention, Query};
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
	/// What the frozen base's products compute in.
	pub compute: ComputeDtype,
}

/// What the frozen base's linear products compute in. Adapters, their gradients and the
/// optimiser are `f32` either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeDtype {
	/// `f32` throughout.
	#[default]
	F32,
	/// Base weights held in bf16 (QLoRA's dequantised to bf16) and multiplied on the CPU's
	/// AVX-512 BF16 instructions, as LLaMA-Factory and QLoRA train. Where the CPU lacks them
	/// the base stays `f32`.
	Bf16,
	/// Base weights held in f16 (QLoRA's dequantised to f16) and multiplied on the CPU's
	/// AVX-512 FP16 instructions, each input row scaled into f16's range
	/// ([`crate::cpu::gemm::product_f16`]). Where the CPU lacks them, or a weight is beyond
	/// [`crate::cpu::gemm::MAX_F16_WEIGHT`], that weight stays `f32`.
	F16,
}

impl ComputeDtype {
	/// The 16-bit kernel the base's products run on: asked for, and the CPU has it.
	pub fn half(self) -> Option<Half> {
		let half = match self {
			ComputeDtype::F32 => return None,
			ComputeDtype::Bf16 => Half::Bf16,
			ComputeDtype::F16 => Half::F16,
		};
		half.supported().then_some(half)
	}
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

	/// DeepSeek's RMSNorms inside attention, whose epsilon is fixed.
	fn latent_norm(&self, path: &str, width: usize) -> Result<NormLayer> {
		Ok(NormLayer {
			weight: self.get(&format!("{path}.weight"), &[width])?,
			bias: None,
			eps: 1e-6,
		})
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

	/// A SiLU-gated MLP `hidden → width → hidden` at `path`, with LLaMA's names.
	fn gated_mlp(&mut self, path: &str, width: usize, bias: bool) -> Result<FeedForward> {
		let h = self.cfg.hidden_size;
		Ok(FeedForward::Gated {
			gate_up: self.group(
				&[(format!("{path}.gate_proj"), width), (format!("{path}.up_proj"), width)],
				h,
				bias,
			)?,
			down: self.linear(&format!("{path}.down_proj"), width, h, bias)?,
		})
	}

	/// DeepSeek's latent attention at `attn`.
	fn latent_attention(&mut self, attn: &str, l: LatentConfig) -> Result<LatentAttention> {
		let (h, heads) = (self.cfg.hidden_size, self.cfg.num_heads);
		let query_width = heads * (l.nope_dim + l.rope_dim);
		let query = match l.q_rank {
			None => Query::Plain(self.linear(&format!("{attn}.q_proj"), h, query_width, false)?),
			Some(rank) => Query::Compressed {
				down: self.linear(&format!("{attn}.q_a_proj"), h, rank, l.bias)?,
				norm: self.latent_norm(&format!("{attn}.q_a_layernorm"), rank)?,
				up: self.linear(&format!("{attn}.q_b_proj"), rank, query_width, false)?,
			},
		};
		let kv_path = format!("{attn}.kv_a_proj_with_mqa");
		Ok(LatentAttention {
			query,
			kv_down: self.linear(&kv_path, h, l.kv_rank + l.rope_dim, l.bias)?,
			kv_norm: self.latent_norm(&format!("{attn}.kv_a_layernorm"), l.kv_rank)?,
			kv_up: self.linear(
				&format!("{attn}.kv_b_proj"),
				l.kv_rank,
				heads * (l.nope_dim + l.value_dim),
				false,
			)?,
			out: self.linear(&format!("{attn}.o_proj"), heads * l.value_dim, h, l.bias)?,
			widths: LatentWidths {
				heads,
				kv_rank: l.kv_rank,
				nope: l.nope_dim,
				rope: l.rope_dim,
				value: l.value_dim,
			},
			softmax_scale: l.softmax_scale as f32,
		})
	}

	/// DeepSeek's mixture of experts at `path`.
	fn experts(&mut self, path: &str, cfg: Experts) -> Result<MixtureOfExperts> {
		let h = self.cfg.hidden_size;
		let experts = (0..cfg.routed)
			.map(|e| match self.gated_mlp(&format!("{path}.experts.{e}"), cfg.width, false)? {
				FeedForward::Gated { gate_up, down } => Ok(Expert { gate_up, down }),
				_ => unreachable!("gated_mlp builds a gated MLP"),
			})
			.collect::<Result<Vec<_>>>()?;
		let shared_width = cfg.width * cfg.shared;
		let shared =
			self.gated_mlp(&format!("{path}.shared_experts"), shared_width, self.cfg.dense_bias)?;
		let correction = match cfg.routing {
			crate::config::Routing::Sigmoid { .. } => Some(
				self.get(&format!("{path}.gate.e_score_correction_bias"), &[cfg.routed])?
					.to_vec1()?,
			),
			crate::config::Routing::Softmax { .. } => None,
		};
		Ok(MixtureOfExperts {
			router: self.get(&format!("{path}.gate.weight"), &[cfg.routed, h])?,
			correction,
			experts,
			shared,
			cfg,
		})
	}

	/// A frozen `weight` in the format its products run in: bf16 or f16 under half-precision
	/// compute (f16 only within [`MAX_F16_WEIGHT`]), else f32.
	fn in_compute_dtype(&self, weight: Tensor) -> Result<FrozenWeight> {
		Ok(FrozenWeight::Dense(match self.options.compute.half() {
			Some(Half::Bf16) => weight.to_dtype(candle_core::DType::BF16)?,
			Some(Half::F16) if weight.abs()?.max_all()?.to_scalar::<f32>()? <= MAX_F16_WEIGHT => {
				weight.to_dtype(candle_core::DType::F16)?
			},
			_ => weight,
		}))
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
		// A quantised base is dequantised to 16 bits per product instead.
		let weight = match self.options.quant {
			Some(_) => FrozenWeight::Dense(weight),
			None => self.in_compute_dtype(weight)?,
		};
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
		Ok(Linear { path: path.to_string(), index, weight, bias, lora, panels: Arc::default() })
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

/// The MLP sublayer.
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
	/// DeepSeek's routed and shared experts.
	Experts(Box<MixtureOfExperts>),
}

impl FeedForward {
	/// `residual` plus the MLP of `x`.
	fn forward(&self, residual: &Tensor, x: &Tensor, mode: ForwardMode) -> Result<Tensor> {
		match self {
			FeedForward::Gated { gate_up, down } => down.forward_onto(
				residual,
				&gate_up.forward(x, mode)?,
				Some(Activation::SiluGate),
				mode,
			),
			FeedForward::Gelu { fc, proj } => {
				proj.forward_onto(residual, &fc.forward(x, mode)?, Some(Activation::GeluTanh), mode)
			},
			FeedForward::Experts(experts) => experts.forward(residual, x, mode),
		}
	}

	/// The linear layers, in model order.
	fn linears(&self) -> Vec<&Linear> {
		match self {
			FeedForward::Gated { gate_up, down } => gate_up.members.iter().chain([down]).collect(),
			FeedForward::Gelu { fc, proj } => vec![fc, proj],
			FeedForward::Experts(moe) => moe
				.experts
				.iter()
				.flat_map(|e| e.gate_up.members.iter().chain([&e.down]))
				.chain(moe.shared.linears())
				.collect(),
		}
	}
}

/// A block's attention: over separate heads, or DeepSeek's latent attention.
// One a block, built once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
enum BlockAttention {
	Heads(Attention),
	Latent(LatentAttention),
}

impl BlockAttention {
	#[allow(clippy::too_many_arguments)]
	fn forward(
		&self,
		heads: &Heads,
		residual: &Tensor,
		x: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		match self {
			BlockAttention::Heads(a) => a.forward(heads, residual, x, offset, mask, cache, mode),
			BlockAttention::Latent(a) => a.forward(heads, residual, x, offset, mask, cache, mode),
		}
	}

	fn forward_ragged(
		&self,
		heads: &Heads,
		residual: &Tensor,
		x: &Tensor,
		parts: &[(usize, usize)],
		caches: Vec<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		match self {
			BlockAttention::Heads(a) => a.forward_ragged(heads, residual, x, parts, caches, mode),
			BlockAttention::Latent(a) => a.forward_ragged(heads, residual, x, parts, caches, mode),
		}
	}

	/// The linear layers, in model order.
	fn linears(&self) -> Vec<&Linear> {
		match self {
			BlockAttention::Heads(a) => a.qkv.members.iter().chain([&a.out]).collect(),
			BlockAttention::Latent(a) => a.linears(),
		}
	}
}

/// One pre-norm transformer block.
#[derive(Clone, Debug)]
struct Block {
	attn_norm: NormLayer,
	attention: BlockAttention,
	mlp_norm: NormLayer,
	mlp: FeedForward,
}

impl Block {
	/// The residual stream after this block. Each sublayer's output projection adds onto the
	/// stream itself.
	fn forward(
		&self,
		heads: &Heads,
		x: &Tensor,
		offset: usize,
		mask: Option<&Tensor>,
		cache: Option<&mut LayerCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let normed = self.attn_norm.forward(x, mode)?;
		let x = self.attention.forward(heads, x, &normed, offset, mask, cache, mode)?;
		self.mlp.forward(&x, &self.mlp_norm.forward(&x, mode)?, mode)
	}
}

/// Keys and values of the positions seen so far, one entry per layer, for generation.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
	layers: Vec<LayerCache>,
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
	heads: Heads,
	/// The 16-bit kernel the base's products run on, if any.
	half: Option<Half>,
}

/// Inverse frequencies of the rotary embedding, LLaMA 3's or YaRN's scaling applied.
fn rope_inverse_frequencies(
	theta: f64,
	rotary_dim: usize,
	scaling: Option<RopeScaling>,
) -> Vec<f32> {
	let frequency = |j: usize| 1.0 / theta.powf(2.0 * j as f64 / rotary_dim as f64);
	if let Some(RopeScaling::Yarn(yarn)) = scaling {
		// transformers' `_compute_yarn_parameters`: the dimension at which a frequency turns
		// `turns` times over the original context bounds the blend.
		let dim = rotary_dim as f64;
		let at = |turns: f64| {
			dim * (yarn.original_max_positions as f64 / (turns * 2.0 * std::f64::consts::PI)).ln()
				/ (2.0 * theta.ln())
		};
		let low = at(yarn.beta_fast).floor().max(0.0);
		let mut high = at(yarn.beta_slow).ceil().min(dim - 1.0);
		if low == high {
			high += 0.001;
		}
		return (0..rotary_dim / 2)
			.map(|j| {
				let slowed = ((j as f64 - low) / (high - low)).clamp(0.0, 1.0);
				let freq = frequency(j);
				(freq / yarn.factor * slowed + freq * (1.0 - slowed)) as f32
			})
			.collect();
	}
	(0..rotary_dim / 2)
		.map(|j| {
			let freq = frequency(j);
			let Some(RopeScaling::Llama3(scaling)) = scaling else { return freq as f32 };
			let (factor, low, high) =
				(scaling.factor, scaling.low_freq_factor, scaling.high_freq_factor);
			let original = scaling.original_max_positions;
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
		let names = cfg.family.paths();
		let h = cfg.hidden_size;
		let embed = loader.get(&format!("{}.weight", names.embed), &[cfg.vocab_size, h])?;
		let positions = match names.positions {
			Some(p) => Some(loader.get(&format!("{p}.weight"), &[cfg.max_positions, h])?),
			None => None,
		};
		let embedding_norm = match names.embedding_norm {
			Some(p) => Some(loader.norm(p, h, cfg.norm)?),
			None => None,
		};
		let (q_width, kv_width) = cfg.qkv_width();
		let mut blocks = Vec::with_capacity(cfg.num_layers);
		for layer in 0..cfg.num_layers {
			let base = format!("{}.{layer}", names.layers);
			let attn = format!("{base}.{}", names.attention);
			let mlp_path = format!("{base}.mlp");
			if let (Some(latent), Some(experts)) = (cfg.latent_attention, cfg.experts) {
				let attention = BlockAttention::Latent(loader.latent_attention(&attn, latent)?);
				let mlp = if layer < experts.first_layer {
					loader.gated_mlp(&mlp_path, cfg.intermediate_size, cfg.dense_bias)?
				} else {
					FeedForward::Experts(Box::new(loader.experts(&mlp_path, experts)?))
				};
				blocks.push(Block {
					attn_norm: loader.norm(&format!("{base}.{}", names.attn_norm), h, cfg.norm)?,
					attention,
					mlp_norm: loader.norm(&format!("{base}.{}", names.mlp_norm), h, cfg.norm)?,
					mlp,
				});
				continue;
			}
			let qkv_layers = match names.fused_qkv {
				None => vec![
					(format!("{attn}.q_proj"), q_width),
					(format!("{attn}.k_proj"), kv_width),
					(format!("{attn}.v_proj"), kv_width),
				],
				Some(fused) => vec![(format!("{attn}.{fused}"), q_width + 2 * kv_width)],
			};
			let qkv = loader.group(&qkv_layers, h, cfg.qkv_bias)?;
			let out =
				loader.linear(&format!("{attn}.{}", names.attn_out), q_width, h, cfg.dense_bias)?;
			let qk_norm = if cfg.qk_norm {
				Some((
					loader.norm(&format!("{attn}.q_norm"), cfg.head_dim, Norm::Rms)?,
					loader.norm(&format!("{attn}.k_norm"), cfg.head_dim, Norm::Rms)?,
				))
			} else {
				None
			};
			let f = cfg.intermediate_size;
			let mlp = match (cfg.mlp, names.mlp_in_out) {
				(Mlp::GatedSilu, _) => loader.gated_mlp(&mlp_path, f, cfg.dense_bias)?,
				(Mlp::FusedGatedSilu, Some((mlp_in, mlp_out))) => FeedForward::Gated {
					gate_up: loader.group(
						&[(format!("{mlp_path}.{mlp_in}"), 2 * f)],
						h,
						cfg.dense_bias,
					)?,
					down: loader.linear(&format!("{mlp_path}.{mlp_out}"), f, h, cfg.dense_bias)?,
				},
				(Mlp::GeluTanh, Some((mlp_in, mlp_out))) => FeedForward::Gelu {
					fc: loader.linear(&format!("{mlp_path}.{mlp_in}"), h, f, true)?,
					proj: loader.linear(&format!("{mlp_path}.{mlp_out}"), f, h, true)?,
				},
				(mlp, None) => {
					unreachable!("{:?} names its {mlp:?} projections", cfg.family)
				},
			};
			blocks.push(Block {
				attn_norm: loader.norm(&format!("{base}.{}", names.attn_norm), h, cfg.norm)?,
				attention: BlockAttention::Heads(Attention { qkv, out, qk_norm }),
				mlp_norm: loader.norm(&format!("{base}.{}", names.mlp_norm), h, cfg.norm)?,
				mlp,
			});
		}
		let final_norm = loader.norm(names.final_norm, h, cfg.norm)?;
		// The output projection is never quantised or adapted: it is tied to the embedding in
		// most families, and PEFT's LoRA targets leave it alone. Under half-precision compute
		// it is held in 16 bits too (beside an f32 embedding, where tied), as PyTorch's
		// autocast runs it: it is a fifth of GPT-2's and SmolLM2's products.
		let lm_path = names.lm_head.filter(|_| !cfg.tie_word_embeddings);
		let lm_weight = match lm_path {
			Some(p) => loader.get(&format!("{p}.weight"), &[cfg.vocab_size, h])?,
			None => embed.clone(),
		};
		let lm_head = Linear {
			path: lm_path.unwrap_or(names.embed).to_string(),
			index: u64::MAX,
			weight: loader.in_compute_dtype(lm_weight)?,
			bias: None,
			lora: None,
			panels: Arc::default(),
		};
		let rope = match cfg.positions {
			Positions::Rope { theta, rotary_dim, interleaved, scaling } => {
				let inverse = rope_inverse_frequencies(theta, rotary_dim, scaling);
				let angles: Vec<f32> = (0..cfg.max_positions)
					.flat_map(|p| inverse.iter().map(move |f| p as f32 * f))
					.collect();
				let magnitude = match scaling {
					Some(RopeScaling::Yarn(yarn)) => yarn.attention_factor as f32,
					_ => 1.0,
				};
				Some(RopeTables {
					cos: Arc::new(angles.iter().map(|a| a.cos() * magnitude).collect()),
					sin: Arc::new(angles.iter().map(|a| a.sin() * magnitude).collect()),
					rotary_dim,
					interleaved,
				})
			},
			_ => None,
		};
		let heads = Heads {
			head_dim: cfg.head_dim,
			query_heads: cfg.num_heads,
			kv_heads: cfg.num_kv_heads,
			per_head_qkv: cfg.qkv == QkvLayout::PerHead,
			sliding_window: cfg.sliding_window,
			rope,
			alibi_slopes: matches!(cfg.positions, Positions::Alibi)
				.then(|| Arc::new(alibi_slopes(cfg.num_heads))),
		};
		let model = Self {
			cfg: cfg.clone(),
			device: device.clone(),
			embed,
			positions,
			embedding_norm,
			blocks,
			final_norm,
			lm_head,
			heads,
			half: options.compute.half().filter(|_| device.is_cpu()),
		};
		// As PEFT: a target a model lacks is fine (DeepSeek's query is `q_proj` in some
		// models, `q_a_proj` and `q_b_proj` in others), targets that adapt nothing are not.
		if let Some(lora) = &options.lora {
			if !model.linears().iter().any(|l| l.lora.is_some()) {
				return Err(Error::hyper(
					"target_modules",
					format!(
						"{} match no layer of this model; it has {}",
						lora.targets.join(", "),
						cfg.linear_modules().join(", ")
					),
				));
			}
		}
		Ok(model)
	}

	/// Stores the output projection quantised as well, for inference: decoding a token reads
	/// it whole (SmolLM2's is a fifth of the model). Training never does this; the fused loss
	/// reads it dense.
	pub fn quantize_output(&mut self, kind: QuantKind) -> Result<()> {
		self.lm_head.weight = self.lm_head.weight.clone().quantize(kind)?;
		Ok(())
	}

	/// The device the model lives on.
	pub fn device(&self) -> &Device {
		&self.device
	}

	/// Every linear layer, in model order.
	pub fn linears(&self) -> Vec<&Linear> {
		self.blocks
			.iter()
			.flat_map(|block| block.attention.linears().into_iter().chain(block.mlp.linears()))
			.collect()
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

	/// The tensor ids of the routed experts' adapters: the only layers a step may skip, when
	/// no token chooses the expert.
	pub fn routed_expert_vars(&self) -> std::collections::HashSet<candle_core::TensorId> {
		let experts = self.blocks.iter().filter_map(|block| match &block.mlp {
			FeedForward::Experts(moe) => Some(&moe.experts),
			_ => None,
		});
		experts
			.flatten()
			.flat_map(|e| e.gate_up.members.iter().chain([&e.down]))
			.filter_map(|linear| linear.lora.as_ref())
			.flat_map(|lora| [lora.a.as_tensor().id(), lora.b.as_tensor().id()])
			.collect()
	}

	/// Each adapter tensor's gradient in `store`, in [`Model::lora_vars`] order: zero for a
	/// routed expert no token chose (it never ran); any other tensor without one is an error
	/// naming it.
	pub fn lora_gradients(&self, store: &candle_core::backprop::GradStore) -> Result<Vec<Tensor>> {
		let routed = self.routed_expert_vars();
		self.lora_vars()
			.into_iter()
			.map(|(name, var)| match store.get(var.as_tensor()) {
				Some(grad) => Ok(grad.clone()),
				None if routed.contains(&var.as_tensor().id()) => Ok(var.zeros_like()?),
				None => Err(Error::Candle(candle_core::Error::Msg(format!(
					"{name} received no gradient"
				)))),
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
			if let BlockAttention::Latent(latent) = &block.attention {
				for (name, weight) in latent.norms() {
					out.push((format!("{i}.{name}"), weight.clone()));
				}
			}
			if let FeedForward::Experts(moe) = &block.mlp {
				out.push((format!("{i}.router"), moe.router.clone()));
				if let Some(bias) = &moe.correction {
					let bias = Tensor::new(bias.as_slice(), &self.device)?;
					out.push((format!("{i}.e_score_correction_bias"), bias));
				}
			}
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
				self.lm_head.weight.stored(&self.device)?,
				targets.flatten_all()?.to_vec1()?,
				mask.flatten_all()?.to_vec1()?,
				mode.gradients && hidden.track_op(),
			)
			.with_panels(self.lm_head.panels.clone());
			return Ok(hidden.contiguous()?.apply_op1(op)?);
		}
		let logits = self.lm_head.forward(&hidden, mode)?;
		let log_probs = ops::log_softmax(&logits, D::Minus1)?;
		let picked =
			log_probs.gather(&targets.unsqueeze(D::Minus1)?, D::Minus1)?.squeeze(D::Minus1)?;
		Ok((picked * mask)?.sum_all()?.neg()?)
	}

	/// For each mixture-of-experts block, in order, the routed experts each position of `ids`
	/// `[batch, seq]` (row-major) is sent to, best first. Empty for models without experts.
	pub fn expert_choices(&self, ids: &Tensor) -> Result<Vec<Vec<Vec<usize>>>> {
		let log = RoutingLog::default();
		self.hidden_states(
			ids,
			None,
			ForwardMode { routing_log: Some(&log), ..ForwardMode::EVAL },
		)?;
		Ok(log.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()))
	}

	/// The final normed hidden states `[batch, seq, hidden]`, before the output layer.
	fn hidden_states(
		&self,
		ids: &Tensor,
		cache: Option<&mut KvCache>,
		mode: ForwardMode,
	) -> Result<Tensor> {
		let (_batch, seq) = ids.dims2()?;
		let mode = ForwardMode { half: self.half, ..mode };
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
		let mask = if mode.kernels.fused_on(&self.device) {
			None
		} else {
			Some(self.heads.causal_mask(seq, offset, &self.device)?)
		};
		let mut cache = cache;
		if let Some(c) = cache.as_deref_mut() {
			c.layers.resize(self.blocks.len(), None);
		}
		for (i, block) in self.blocks.iter().enumerate() {
			let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
			x = block.forward(&self.heads, &x, offset, mask.as_ref(), layer_cache, mode)?;
		}
		self.final_norm.forward(&x, mode)
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
