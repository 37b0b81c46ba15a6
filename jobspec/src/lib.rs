//! A fine-tuning job's specification, and the one rule function that judges it.
//!
//! The chain refuses a job whose hyper-parameters the trainer would refuse, so both apply the
//! same [`check`]: `pallet-models` in `create_job`, the trainer before it trains, and the CLI
//! before it pays for a transaction. Every value is an integer (rates in billionths, fractions
//! in millionths), so the rule gives the same answer in the runtime's WebAssembly as on a
//! worker, and a job's parameters encode the same everywhere.
//!
//! ```
//! use provenant_jobspec::{check, BaseLimits, Family, Field, HyperParams};
//!
//! let limits = BaseLimits { family: Family::Llama, max_positions: 2048 };
//! let mut params = HyperParams::defaults(Family::Llama);
//! assert_eq!(check(&params, &limits), Ok(()));
//!
//! params.cutoff_len = 4096;
//! let refusal = check(&params, &limits).unwrap_err();
//! assert_eq!(refusal.field, Field::CutoffLen);
//! assert_eq!(
//!     refusal.to_string(),
//!     "invalid hyper-parameter cutoff_len: 4096 is beyond the model's 2048 positions"
//! );
//! ```

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

use core::fmt;

/// Derives SCALE encoding and type information when the `scale` feature is on.
macro_rules! scale_type {
	($item:item) => {
		#[cfg_attr(
			feature = "scale",
			derive(
				codec::Encode,
				codec::Decode,
				codec::DecodeWithMemTracking,
				codec::MaxEncodedLen,
				scale_info::TypeInfo
			)
		)]
		$item
	};
}

/// Billionths: a learning rate of 2e-4 is `Nano(200_000)`.
pub const NANO: u32 = 1_000_000_000;
/// Millionths: a dropout of 0.05 is `50_000`.
pub const MICRO: u32 = 1_000_000;

scale_type! {
/// A base model's architecture family, as a model registry names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
	/// LLaMA 2/3 and LLaMA-architecture models.
	Llama,
	/// DeepSeek-V2 and V3: multi-head latent attention and mixture-of-experts layers. (Its
	/// dense R1 distills are LLaMA or Qwen models, and registered as those.)
	DeepSeek,
	/// Mistral.
	Mistral,
	/// Qwen2 and Qwen3.
	Qwen,
	/// BLOOM.
	Bloom,
	/// GPT-2.
	Gpt2,
	/// ChatGLM2/3.
	ChatGlm,
}
}

impl Family {
	/// Every family.
	pub const ALL: [Family; 7] = [
		Family::Llama,
		Family::DeepSeek,
		Family::Mistral,
		Family::Qwen,
		Family::Bloom,
		Family::Gpt2,
		Family::ChatGlm,
	];

	/// The lower-case name people type.
	pub fn name(self) -> &'static str {
		match self {
			Family::Llama => "llama",
			Family::DeepSeek => "deepseek",
			Family::Mistral => "mistral",
			Family::Qwen => "qwen",
			Family::Bloom => "bloom",
			Family::Gpt2 => "gpt2",
			Family::ChatGlm => "chatglm",
		}
	}

	/// The family called `name` (as [`Family::name`] writes it).
	pub fn from_name(name: &str) -> Option<Family> {
		Family::ALL.into_iter().find(|family| family.name() == name)
	}

	/// The linear modules LoRA can adapt, under the names the family's checkpoints and PEFT
	/// use.
	pub fn modules(self) -> &'static [Module] {
		use Module::*;
		match self {
			Family::Llama | Family::Mistral | Family::Qwen => {
				&[QProj, KProj, VProj, OProj, GateProj, UpProj, DownProj]
			},
			// `q_proj` where the queries are not compressed (V2-Lite), `q_a_proj` and `q_b_proj`
			// where they are; the MLPs are the dense layers', the shared and the routed experts'.
			Family::DeepSeek => {
				&[QProj, QAProj, QBProj, KvAProjWithMqa, KvBProj, OProj, GateProj, UpProj, DownProj]
			},
			Family::Gpt2 => &[CAttn, CProj, CFc],
			Family::Bloom | Family::ChatGlm => &[QueryKeyValue, Dense, DenseHTo4h, Dense4hToH],
		}
	}

	/// PEFT's default targets for the family: its attention projections.
	pub fn default_targets(self) -> ModuleSet {
		use Module::*;
		ModuleSet::of(match self {
			Family::Llama | Family::Mistral | Family::Qwen => &[QProj, VProj],
			// PEFT has no default for DeepSeek; its attention projections, whichever of the
			// query's forms the model has.
			Family::DeepSeek => &[QProj, QAProj, QBProj, KvAProjWithMqa, KvBProj, OProj],
			Family::Gpt2 => &[CAttn],
			Family::Bloom | Family::ChatGlm => &[QueryKeyValue],
		})
	}
}

impl fmt::Display for Family {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(self.name())
	}
}

scale_type! {
/// A linear module that LoRA can adapt, by its checkpoint name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
	/// `q_proj`.
	QProj,
	/// `k_proj`.
	KProj,
	/// `v_proj`.
	VProj,
	/// `o_proj`.
	OProj,
	/// `gate_proj`.
	GateProj,
	/// `up_proj`.
	UpProj,
	/// `down_proj`.
	DownProj,
	/// GPT-2's fused `c_attn`.
	CAttn,
	/// GPT-2's `c_proj` (attention and MLP outputs).
	CProj,
	/// GPT-2's `c_fc`.
	CFc,
	/// BLOOM's and ChatGLM's fused `query_key_value`.
	QueryKeyValue,
	/// BLOOM's and ChatGLM's attention output, `dense`.
	Dense,
	/// `dense_h_to_4h`.
	DenseHTo4h,
	/// `dense_4h_to_h`.
	Dense4hToH,
	/// DeepSeek's query compression, `q_a_proj`.
	QAProj,
	/// DeepSeek's query expansion, `q_b_proj`.
	QBProj,
	/// DeepSeek's key/value compression with the shared rotary key, `kv_a_proj_with_mqa`.
	KvAProjWithMqa,
	/// DeepSeek's key/value expansion, `kv_b_proj`.
	KvBProj,
}
}

impl Module {
	/// Every module, in bit order.
	pub const ALL: [Module; 18] = [
		Module::QProj,
		Module::KProj,
		Module::VProj,
		Module::OProj,
		Module::GateProj,
		Module::UpProj,
		Module::DownProj,
		Module::CAttn,
		Module::CProj,
		Module::CFc,
		Module::QueryKeyValue,
		Module::Dense,
		Module::DenseHTo4h,
		Module::Dense4hToH,
		Module::QAProj,
		Module::QBProj,
		Module::KvAProjWithMqa,
		Module::KvBProj,
	];

	/// The checkpoint's (and PEFT's) name.
	pub fn name(self) -> &'static str {
		match self {
			Module::QProj => "q_proj",
			Module::KProj => "k_proj",
			Module::VProj => "v_proj",
			Module::OProj => "o_proj",
			Module::GateProj => "gate_proj",
			Module::UpProj => "up_proj",
			Module::DownProj => "down_proj",
			Module::CAttn => "c_attn",
			Module::CProj => "c_proj",
			Module::CFc => "c_fc",
			Module::QueryKeyValue => "query_key_value",
			Module::Dense => "dense",
			Module::DenseHTo4h => "dense_h_to_4h",
			Module::Dense4hToH => "dense_4h_to_h",
			Module::QAProj => "q_a_proj",
			Module::QBProj => "q_b_proj",
			Module::KvAProjWithMqa => "kv_a_proj_with_mqa",
			Module::KvBProj => "kv_b_proj",
		}
	}

	/// The module called `name`.
	pub fn from_name(name: &str) -> Option<Module> {
		Module::ALL.into_iter().find(|module| module.name() == name)
	}

	fn bit(self) -> u32 {
		1 << (self as u32)
	}
}

impl fmt::Display for Module {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(self.name())
	}
}

scale_type! {
/// A set of modules, one bit per [`Module`] in [`Module::ALL`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ModuleSet(pub u32);
}

impl ModuleSet {
	/// The set holding `modules`.
	pub fn of(modules: &[Module]) -> Self {
		Self(modules.iter().fold(0, |bits, module| bits | module.bit()))
	}

	/// Whether `module` is in the set.
	pub fn contains(self, module: Module) -> bool {
		self.0 & module.bit() != 0
	}

	/// Whether the set is empty.
	pub fn is_empty(self) -> bool {
		self.0 == 0
	}

	/// The modules in the set, in [`Module::ALL`] order.
	pub fn iter(self) -> impl Iterator<Item = Module> {
		Module::ALL.into_iter().filter(move |module| self.contains(*module))
	}

	/// The set of the modules named, each one of `family`'s; the first name that is not is the
	/// error.
	pub fn parse<'a>(
		family: Family,
		names: impl IntoIterator<Item = &'a str>,
	) -> Result<Self, &'a str> {
		names.into_iter().try_fold(Self::default(), |set, name| {
			match Module::from_name(name).filter(|module| family.modules().contains(module)) {
				Some(module) => Ok(Self(set.0 | module.bit())),
				None => Err(name),
			}
		})
	}

	/// Whether a bit is set that names no module.
	fn has_unknown_bits(self) -> bool {
		self.0 >> Module::ALL.len() != 0
	}
}

scale_type! {
/// How the base model is held while the adapter trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
	/// Full precision.
	Lora,
	/// Quantised to `bits` (4: NF4, 8: int8) and dequantised per layer.
	Qlora {
		/// 4 or 8.
		bits: u8,
	},
}
}

impl fmt::Display for Method {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			Method::Lora => f.write_str("LoRA"),
			Method::Qlora { bits } => write!(f, "QLoRA ({bits}-bit)"),
		}
	}
}

scale_type! {
/// Learning-rate decay after warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
	/// Half a cosine from the peak to zero.
	Cosine,
	/// A straight line from the peak to zero.
	Linear,
	/// The peak throughout.
	Constant,
}
}

scale_type! {
/// Every hyper-parameter of a fine-tuning job, in exact integer units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HyperParams {
	/// LoRA, or QLoRA with its bits.
	pub method: Method,
	/// Peak learning rate, in billionths: more than 0, at most 1.
	pub learning_rate: u32,
	/// Passes over the training set: at least 1.
	pub epochs: u16,
	/// Blocks per micro-batch: at least 1.
	pub batch_size: u16,
	/// Micro-batches per optimiser step: at least 1.
	pub grad_accum: u16,
	/// Tokens per training block: at least 2, at most the base model's positions.
	pub cutoff_len: u32,
	/// Steps of linear warm-up.
	pub warmup_steps: u32,
	/// Decay after warm-up.
	pub schedule: Schedule,
	/// AdamW's decoupled weight decay, in billionths: at most 1.
	pub weight_decay: u32,
	/// The gradient's global norm is clipped to this, in billionths: more than 0.
	pub max_grad_norm: u32,
	/// Stop after this many optimiser steps, if fewer than the epochs give: at least 1.
	pub max_steps: Option<u32>,
	/// The adapter's rank `r`: at least 1, at most [`MAX_RANK`].
	pub rank: u16,
	/// LoRA's `α` (the update is scaled by `α/r`): at least 1.
	pub alpha: u16,
	/// Dropout on the adapter's input, in millionths: below one million.
	pub dropout: u32,
	/// Scale by `α/√r` (rsLoRA) instead of `α/r`.
	pub rslora: bool,
	/// The modules to adapt: at least one, all of the base model's family.
	pub targets: ModuleSet,
	/// Seed of every random choice: initialisation, order, dropout, the eval split.
	pub seed: u64,
	/// The share of the training set held out for the eval loss, in millionths: at most
	/// [`MAX_EVAL_FRACTION`].
	pub eval_fraction: u32,
}
}

/// The highest rank a job may ask for.
pub const MAX_RANK: u16 = 256;
/// The largest share of the training set a job may hold out: half.
pub const MAX_EVAL_FRACTION: u32 = MICRO / 2;

impl HyperParams {
	/// The trainer's defaults for a model of `family`: LoRA r=8, α=16 on the attention
	/// projections, dropout 0.05, learning rate 2e-4 with a cosine decay, 3 epochs of 4 blocks
	/// of 256 tokens, seed 42, 10% held out.
	pub fn defaults(family: Family) -> Self {
		Self {
			method: Method::Lora,
			learning_rate: 200_000,
			epochs: 3,
			batch_size: 4,
			grad_accum: 1,
			cutoff_len: 256,
			warmup_steps: 0,
			schedule: Schedule::Cosine,
			weight_decay: 0,
			max_grad_norm: NANO,
			max_steps: None,
			rank: 8,
			alpha: 16,
			dropout: 50_000,
			rslora: false,
			targets: family.default_targets(),
			seed: 42,
			eval_fraction: 100_000,
		}
	}
}

/// What the rules need to know of the base model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseLimits {
	/// Its family, for the target modules.
	pub family: Family,
	/// The most positions it can attend over, for the cutoff length.
	pub max_positions: u32,
}

scale_type! {
/// A hyper-parameter, by the name its flag and config key use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
	/// `learning_rate`.
	LearningRate,
	/// `epochs`.
	Epochs,
	/// `batch_size`.
	BatchSize,
	/// `grad_accum`.
	GradAccum,
	/// `cutoff_len`.
	CutoffLen,
	/// `weight_decay`.
	WeightDecay,
	/// `max_grad_norm`.
	MaxGradNorm,
	/// `max_steps`.
	MaxSteps,
	/// `rank`.
	Rank,
	/// `alpha`.
	Alpha,
	/// `dropout`.
	Dropout,
	/// `target_modules`.
	TargetModules,
	/// `eval_fraction`.
	EvalFraction,
	/// `bits`.
	Bits,
}
}

impl Field {
	/// The name its flag and config key use.
	pub fn name(self) -> &'static str {
		match self {
			Field::LearningRate => "learning_rate",
			Field::Epochs => "epochs",
			Field::BatchSize => "batch_size",
			Field::GradAccum => "grad_accum",
			Field::CutoffLen => "cutoff_len",
			Field::WeightDecay => "weight_decay",
			Field::MaxGradNorm => "max_grad_norm",
			Field::MaxSteps => "max_steps",
			Field::Rank => "rank",
			Field::Alpha => "alpha",
			Field::Dropout => "dropout",
			Field::TargetModules => "target_modules",
			Field::EvalFraction => "eval_fraction",
			Field::Bits => "bits",
		}
	}
}

impl fmt::Display for Field {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		f.write_str(self.name())
	}
}

#[cfg(feature = "frame")]
impl polkadot_sdk::frame_support::traits::PalletError for Field {
	const MAX_ENCODED_SIZE: usize = 1;
}

/// What is wrong with a refused field, with the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
	/// A count is zero.
	Zero,
	/// A count is above its ceiling.
	AboveCount {
		/// The ceiling.
		max: u64,
		/// The value given.
		got: u64,
	},
	/// A rate in billionths is zero.
	ZeroRate,
	/// A rate in billionths is above its ceiling.
	AboveRate {
		/// The ceiling, in billionths.
		max: u32,
		/// The value given, in billionths.
		got: u32,
	},
	/// A fraction in millionths is at or above its bound.
	Fraction {
		/// The value given, in millionths.
		got: u32,
		/// The bound, in millionths.
		bound: u32,
		/// Whether the bound itself is allowed.
		inclusive: bool,
	},
	/// A block cannot hold an input and a target.
	CutoffTooShort,
	/// A block is longer than the model's positions.
	CutoffBeyondModel {
		/// The cutoff given.
		got: u32,
		/// The model's positions.
		positions: u32,
	},
	/// No module is targeted.
	NoTargets,
	/// A targeted module is not in the base model's family.
	TargetNotInFamily {
		/// The module.
		module: Module,
		/// The family.
		family: Family,
	},
	/// A bit of the target set names no module.
	UnknownTargetBits,
	/// QLoRA with bits other than 4 or 8.
	QloraBits {
		/// The bits given.
		got: u8,
	},
}

/// A refused hyper-parameter: which, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
	/// The field.
	pub field: Field,
	/// What is wrong with it.
	pub problem: Problem,
}

/// Writes `value` parts of `unit` as a decimal without trailing zeros: `(200_000, NANO)` is
/// `0.0002`.
struct Decimal {
	value: u64,
	unit: u32,
}

impl fmt::Display for Decimal {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		let unit = u64::from(self.unit);
		write!(f, "{}", self.value / unit)?;
		let mut rest = self.value % unit;
		if rest != 0 {
			f.write_str(".")?;
			let mut place = unit / 10;
			while rest != 0 {
				write!(f, "{}", rest / place)?;
				rest %= place;
				place /= 10;
			}
		}
		Ok(())
	}
}

fn nano(value: u32) -> Decimal {
	Decimal { value: value.into(), unit: NANO }
}

fn micro(value: u32) -> Decimal {
	Decimal { value: value.into(), unit: MICRO }
}

impl fmt::Display for Problem {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match *self {
			Problem::Zero => f.write_str("must be at least 1"),
			Problem::AboveCount { max, got } => write!(f, "must be at most {max}, got {got}"),
			Problem::ZeroRate => f.write_str("must be a positive number, got 0"),
			Problem::AboveRate { max, got } => {
				write!(f, "must be at most {}, got {}", nano(max), nano(got))
			},
			Problem::Fraction { got, bound, inclusive } => write!(
				f,
				"must be in [0, {}{}, got {}",
				micro(bound),
				if inclusive { "]" } else { ")" },
				micro(got)
			),
			Problem::CutoffTooShort => f.write_str("must be at least 2 tokens"),
			Problem::CutoffBeyondModel { got, positions } => {
				write!(f, "{got} is beyond the model's {positions} positions")
			},
			Problem::NoTargets => f.write_str("name at least one module"),
			Problem::TargetNotInFamily { module, family } => {
				write!(f, "{module} is not a module of {family}; it has ")?;
				for (i, module) in family.modules().iter().enumerate() {
					write!(f, "{}{module}", if i == 0 { "" } else { ", " })?;
				}
				Ok(())
			},
			Problem::UnknownTargetBits => f.write_str("names a module that does not exist"),
			Problem::QloraBits { got } => write!(f, "QLoRA takes 4 or 8 bits, got {got}"),
		}
	}
}

impl fmt::Display for Refusal {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		write!(f, "invalid hyper-parameter {}: {}", self.field, self.problem)
	}
}

#[cfg(feature = "std")]
impl std::error::Error for Refusal {}

/// Judges `params` for a base model with `limits`, naming the first field that breaks a rule.
///
/// The order of the checks is the order of [`HyperParams`]' fields, after the method, so every
/// caller names the same field for the same job.
pub fn check(params: &HyperParams, limits: &BaseLimits) -> Result<(), Refusal> {
	let refuse = |field, problem| Err(Refusal { field, problem });
	check_method(params.method)?;
	check_rate(Field::LearningRate, params.learning_rate, true, NANO)?;
	for (field, count) in [
		(Field::Epochs, params.epochs),
		(Field::BatchSize, params.batch_size),
		(Field::GradAccum, params.grad_accum),
	] {
		if count == 0 {
			return refuse(field, Problem::Zero);
		}
	}
	check_cutoff(params.cutoff_len, limits.max_positions)?;
	check_rate(Field::WeightDecay, params.weight_decay, false, NANO)?;
	check_rate(Field::MaxGradNorm, params.max_grad_norm, true, u32::MAX)?;
	if params.max_steps == Some(0) {
		return refuse(Field::MaxSteps, Problem::Zero);
	}
	if params.rank == 0 {
		return refuse(Field::Rank, Problem::Zero);
	}
	if params.rank > MAX_RANK {
		return refuse(
			Field::Rank,
			Problem::AboveCount { max: MAX_RANK.into(), got: params.rank.into() },
		);
	}
	if params.alpha == 0 {
		return refuse(Field::Alpha, Problem::Zero);
	}
	if params.dropout >= MICRO {
		return refuse(
			Field::Dropout,
			Problem::Fraction { got: params.dropout, bound: MICRO, inclusive: false },
		);
	}
	check_targets(params.targets, limits.family)?;
	if params.eval_fraction > MAX_EVAL_FRACTION {
		return refuse(
			Field::EvalFraction,
			Problem::Fraction {
				got: params.eval_fraction,
				bound: MAX_EVAL_FRACTION,
				inclusive: true,
			},
		);
	}
	Ok(())
}

/// QLoRA quantises to 4 or 8 bits.
pub fn check_method(method: Method) -> Result<(), Refusal> {
	match method {
		Method::Qlora { bits } if bits != 4 && bits != 8 => {
			Err(Refusal { field: Field::Bits, problem: Problem::QloraBits { got: bits } })
		},
		_ => Ok(()),
	}
}

/// A rate in billionths: zero only where `positive` is false, and at most `max`.
fn check_rate(field: Field, value: u32, positive: bool, max: u32) -> Result<(), Refusal> {
	if positive && value == 0 {
		return Err(Refusal { field, problem: Problem::ZeroRate });
	}
	if value > max {
		return Err(Refusal { field, problem: Problem::AboveRate { max, got: value } });
	}
	Ok(())
}

/// A block must hold an input and its target, and fit the model's positions.
pub fn check_cutoff(cutoff_len: u32, max_positions: u32) -> Result<(), Refusal> {
	let field = Field::CutoffLen;
	if cutoff_len < 2 {
		return Err(Refusal { field, problem: Problem::CutoffTooShort });
	}
	if cutoff_len > max_positions {
		return Err(Refusal {
			field,
			problem: Problem::CutoffBeyondModel { got: cutoff_len, positions: max_positions },
		});
	}
	Ok(())
}

/// At least one module, each a module of `family`.
pub fn check_targets(targets: ModuleSet, family: Family) -> Result<(), Refusal> {
	let field = Field::TargetModules;
	if targets.has_unknown_bits() {
		return Err(Refusal { field, problem: Problem::UnknownTargetBits });
	}
	if targets.is_empty() {
		return Err(Refusal { field, problem: Problem::NoTargets });
	}
	match targets.iter().find(|module| !family.modules().contains(module)) {
		Some(module) => {
			Err(Refusal { field, problem: Problem::TargetNotInFamily { module, family } })
		},
		None => Ok(()),
	}
}

/// A rate in `unit`ths, rounded to the nearest, for callers holding a float: `None` for a
/// negative, non-finite or too large value.
pub fn to_units(value: f64, unit: u32) -> Option<u32> {
	let scaled = value * f64::from(unit);
	// `as` saturates; the range check keeps saturation from turning a huge value into a valid
	// one.
	(scaled.is_finite() && scaled >= 0.0 && scaled <= f64::from(u32::MAX)).then(|| {
		let floor = scaled as u32;
		if scaled - f64::from(floor) >= 0.5 {
			floor.saturating_add(1)
		} else {
			floor
		}
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	fn limits() -> BaseLimits {
		BaseLimits { family: Family::Llama, max_positions: 2048 }
	}

	fn refused(change: impl FnOnce(&mut HyperParams)) -> Refusal {
		let mut params = HyperParams::defaults(Family::Llama);
		change(&mut params);
		check(&params, &limits()).expect_err("the change breaks a rule")
	}

	#[test]
	fn the_defaults_pass_for_every_family() {
		for family in Family::ALL {
			let limits = BaseLimits { family, max_positions: 1024 };
			assert_eq!(check(&HyperParams::defaults(family), &limits), Ok(()), "{family}");
		}
	}

	#[test]
	fn each_rule_names_its_field_and_the_numbers() {
		type Case = (fn(&mut HyperParams), &'static str);
		let cases: [Case; 16] = [
			(|p| p.method = Method::Qlora { bits: 3 }, "bits: QLoRA takes 4 or 8 bits, got 3"),
			(|p| p.learning_rate = 0, "learning_rate: must be a positive number, got 0"),
			(|p| p.learning_rate = NANO + 1, "learning_rate: must be at most 1, got 1.000000001"),
			(|p| p.epochs = 0, "epochs: must be at least 1"),
			(|p| p.batch_size = 0, "batch_size: must be at least 1"),
			(|p| p.grad_accum = 0, "grad_accum: must be at least 1"),
			(|p| p.cutoff_len = 1, "cutoff_len: must be at least 2 tokens"),
			(|p| p.cutoff_len = 2049, "cutoff_len: 2049 is beyond the model's 2048 positions"),
			(|p| p.weight_decay = 2 * NANO, "weight_decay: must be at most 1, got 2"),
			(|p| p.max_grad_norm = 0, "max_grad_norm: must be a positive number, got 0"),
			(|p| p.max_steps = Some(0), "max_steps: must be at least 1"),
			(|p| p.rank = 0, "rank: must be at least 1"),
			(|p| p.rank = 512, "rank: must be at most 256, got 512"),
			(|p| p.dropout = MICRO, "dropout: must be in [0, 1), got 1"),
			(
				|p| p.targets = ModuleSet::of(&[Module::QProj, Module::CAttn]),
				"target_modules: c_attn is not a module of llama; it has q_proj, k_proj, v_proj, \
				 o_proj, gate_proj, up_proj, down_proj",
			),
			(|p| p.eval_fraction = 600_000, "eval_fraction: must be in [0, 0.5], got 0.6"),
		];
		for (change, expected) in cases {
			let message = refused(change).to_string();
			assert_eq!(message, format!("invalid hyper-parameter {expected}"));
		}
		assert_eq!(refused(|p| p.alpha = 0).field, Field::Alpha);
		assert_eq!(refused(|p| p.targets = ModuleSet(0)).problem, Problem::NoTargets);
		assert_eq!(refused(|p| p.targets = ModuleSet(1 << 31)).problem, Problem::UnknownTargetBits);
	}

	#[test]
	fn the_first_broken_field_is_named() {
		let refusal = refused(|p| {
			p.rank = 0;
			p.epochs = 0;
		});
		assert_eq!(refusal.field, Field::Epochs);
	}

	#[test]
	fn boundaries_are_allowed() {
		let mut params = HyperParams::defaults(Family::Gpt2);
		params.learning_rate = NANO;
		params.cutoff_len = 1024;
		params.rank = MAX_RANK;
		params.dropout = MICRO - 1;
		params.eval_fraction = MAX_EVAL_FRACTION;
		params.method = Method::Qlora { bits: 8 };
		params.targets = ModuleSet::of(Family::Gpt2.modules());
		assert_eq!(
			check(&params, &BaseLimits { family: Family::Gpt2, max_positions: 1024 }),
			Ok(())
		);
	}

	#[test]
	fn target_names_parse_only_within_the_family() {
		let set = ModuleSet::parse(Family::Llama, ["q_proj", "v_proj"]).unwrap();
		assert_eq!(set, ModuleSet::of(&[Module::QProj, Module::VProj]));
		assert_eq!(ModuleSet::parse(Family::Gpt2, ["c_attn", "q_proj"]), Err("q_proj"));
		assert_eq!(ModuleSet::parse(Family::Llama, ["qproj"]), Err("qproj"));
	}

	#[test]
	fn names_round_trip() {
		for module in Module::ALL {
			assert_eq!(Module::from_name(module.name()), Some(module));
		}
		for family in Family::ALL {
			assert_eq!(Family::from_name(family.name()), Some(family));
		}
		assert_eq!(Module::from_name("lm_head"), None);
	}

	#[test]
	fn floats_round_to_the_nearest_unit() {
		assert_eq!(to_units(2e-4, NANO), Some(200_000));
		assert_eq!(to_units(0.05, MICRO), Some(50_000));
		assert_eq!(to_units(1.0, NANO), Some(NANO));
		assert_eq!(to_units(-1e-4, NANO), None);
		assert_eq!(to_units(f64::NAN, NANO), None);
		assert_eq!(to_units(1e300, NANO), None);
	}
}
