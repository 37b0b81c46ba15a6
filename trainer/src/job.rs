//! Runs as a fine-tuning job describes them.
//!
//! The chain refuses a job whose hyper-parameters the trainer would refuse because both judge
//! them with one rule function, [`provenant_jobspec::check`]. This module is the trainer's side
//! of that bargain: [`check`] turns a run's settings into a job's exact integer units and
//! applies that function (plus the optimiser constants a job does not set), and
//! [`train_config`], [`lora_settings`] and [`quant`] turn a job back into the settings a worker
//! trains with.

use crate::{
	adapter::LoraSettings,
	config::{Family, ModelConfig},
	quant::QuantKind,
	train::{Schedule, TrainConfig},
	Error, Result,
};
use provenant_jobspec::{self as spec, BaseLimits, HyperParams, Method, ModuleSet};

pub use provenant_jobspec::{MICRO, NANO};

/// Checks a whole run, naming the first hyper-parameter that the chain's rule refuses.
pub fn check(
	train: &TrainConfig,
	lora: &LoraSettings,
	quant: Option<QuantKind>,
	model: &ModelConfig,
) -> Result<HyperParams> {
	let params = hyper_params(train, lora, quant, model.family)?;
	judge(&params, model.family, model.max_positions)?;
	check_optimiser(train)?;
	Ok(params)
}

/// Checks LoRA settings alone (an adapter read from disk) with the chain's rule.
pub fn check_lora(lora: &LoraSettings, family: Family) -> Result<()> {
	let defaults = TrainConfig::default();
	let params = hyper_params(&defaults, lora, None, family)?;
	judge(&params, family, u32::MAX as usize)
}

/// Checks the training settings alone with the chain's rule, for `model`.
pub fn check_train(train: &TrainConfig, model: &ModelConfig) -> Result<()> {
	let lora = LoraSettings::defaults(model.family);
	let params = hyper_params(train, &lora, None, model.family)?;
	judge(&params, model.family, model.max_positions)?;
	check_optimiser(train)
}

/// The run's settings in a job's units. Fails, naming the field, for a value a job cannot
/// express (negative, not finite, or beyond its integer range) and for a module name the
/// family does not have.
pub fn hyper_params(
	train: &TrainConfig,
	lora: &LoraSettings,
	quant: Option<QuantKind>,
	family: Family,
) -> Result<HyperParams> {
	let targets = ModuleSet::parse(family.spec(), lora.targets.iter().map(String::as_str))
		.map_err(|name| Error::UnknownTargetModule {
			module: name.to_string(),
			family: family.name(),
			available: family.linear_modules().join(", "),
		})?;
	Ok(HyperParams {
		method: match quant {
			None => Method::Lora,
			Some(QuantKind::Nf4) => Method::Qlora { bits: 4 },
			Some(QuantKind::Int8) => Method::Qlora { bits: 8 },
		},
		learning_rate: rate("learning_rate", train.learning_rate, NANO)?,
		epochs: count("epochs", train.epochs)?,
		batch_size: count("batch_size", train.batch_size)?,
		grad_accum: count("grad_accum", train.grad_accum)?,
		cutoff_len: count("cutoff_len", train.cutoff_len)?,
		warmup_steps: count("warmup_steps", train.warmup_steps)?,
		schedule: match train.schedule {
			Schedule::Cosine => spec::Schedule::Cosine,
			Schedule::Linear => spec::Schedule::Linear,
			Schedule::Constant => spec::Schedule::Constant,
		},
		weight_decay: rate("weight_decay", train.weight_decay, NANO)?,
		max_grad_norm: rate("max_grad_norm", train.max_grad_norm, NANO)?,
		max_steps: train.max_steps.map(|steps| count("max_steps", steps)).transpose()?,
		rank: count("rank", lora.rank)?,
		// A job's α is whole; a local run may use any positive α, judged by its rounding.
		alpha: {
			let alpha = lora.alpha;
			if !(alpha.is_finite() && alpha > 0.0) {
				return Err(Error::hyper(
					"alpha",
					format!("must be a positive number, got {alpha}"),
				));
			}
			alpha.round().clamp(1.0, f64::from(u16::MAX)) as u16
		},
		dropout: rate("dropout", f64::from(lora.dropout), MICRO)?,
		rslora: lora.use_rslora,
		targets,
		seed: train.seed,
		eval_fraction: 0,
	})
}

/// The training settings a job asks for. The optimiser constants a job does not set keep
/// the trainer's defaults; checkpoints are the worker's business.
pub fn train_config(params: &HyperParams) -> TrainConfig {
	TrainConfig {
		learning_rate: f64::from(params.learning_rate) / f64::from(NANO),
		epochs: params.epochs.into(),
		batch_size: params.batch_size.into(),
		grad_accum: params.grad_accum.into(),
		cutoff_len: params.cutoff_len as usize,
		warmup_steps: params.warmup_steps as usize,
		schedule: match params.schedule {
			spec::Schedule::Cosine => Schedule::Cosine,
			spec::Schedule::Linear => Schedule::Linear,
			spec::Schedule::Constant => Schedule::Constant,
		},
		weight_decay: f64::from(params.weight_decay) / f64::from(NANO),
		max_grad_norm: f64::from(params.max_grad_norm) / f64::from(NANO),
		seed: params.seed,
		max_steps: params.max_steps.map(|steps| steps as usize),
		..TrainConfig::default()
	}
}

/// The adapter a job asks for.
pub fn lora_settings(params: &HyperParams) -> LoraSettings {
	LoraSettings {
		rank: params.rank.into(),
		alpha: params.alpha.into(),
		dropout: (f64::from(params.dropout) / f64::from(MICRO)) as f32,
		targets: params.targets.iter().map(|module| module.name().to_string()).collect(),
		use_rslora: params.rslora,
	}
}

/// The base precision a job asks for: `None` for LoRA's full precision.
pub fn quant(method: Method) -> Option<QuantKind> {
	match method {
		Method::Lora => None,
		Method::Qlora { bits: 8 } => Some(QuantKind::Int8),
		// `check` admits only 4 and 8.
		Method::Qlora { .. } => Some(QuantKind::Nf4),
	}
}

/// The base precision for QLoRA with `bits`, refused by the chain's rule unless 4 or 8.
pub fn qlora(bits: u8) -> Result<QuantKind> {
	let method = Method::Qlora { bits };
	spec::check_method(method).map_err(refused)?;
	Ok(quant(method).expect("QLoRA quantises"))
}

/// A refusal of the chain's rule as the trainer's error.
pub(crate) fn refused(refusal: spec::Refusal) -> Error {
	Error::hyper(refusal.field.name(), refusal.problem.to_string())
}

fn judge(params: &HyperParams, family: Family, max_positions: usize) -> Result<()> {
	let limits = BaseLimits {
		family: family.spec(),
		max_positions: u32::try_from(max_positions).unwrap_or(u32::MAX),
	};
	spec::check(params, &limits).map_err(refused)
}

/// AdamW's constants, which a job leaves at the trainer's defaults.
fn check_optimiser(train: &TrainConfig) -> Result<()> {
	if !(train.eps.is_finite() && train.eps > 0.0) {
		return Err(Error::hyper("eps", format!("must be a positive number, got {}", train.eps)));
	}
	for (name, beta) in [("beta1", train.beta1), ("beta2", train.beta2)] {
		if !(0.0..1.0).contains(&beta) {
			return Err(Error::hyper(name, format!("must be in [0, 1), got {beta}")));
		}
	}
	Ok(())
}

fn rate(name: &'static str, value: f64, unit: u32) -> Result<u32> {
	spec::to_units(value, unit).ok_or_else(|| {
		let reason = if value.is_finite() && value > 0.0 {
			format!("{value} is more than a job can hold")
		} else {
			format!("must be a number ≥ 0, got {value}")
		};
		Error::hyper(name, reason)
	})
}

fn count<T: TryFrom<usize>>(name: &'static str, value: usize) -> Result<T> {
	T::try_from(value).map_err(|_| {
		Error::hyper(
			name,
			format!("{value} is more than a job can hold ({})", core::any::type_name::<T>()),
		)
	})
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_job_round_trips_through_the_trainer_settings() {
		for family in [Family::Llama, Family::Gpt2, Family::Bloom, Family::ChatGlm] {
			let mut params = HyperParams::defaults(family.spec());
			params.method = Method::Qlora { bits: 8 };
			params.max_steps = Some(7);
			params.schedule = spec::Schedule::Linear;
			params.weight_decay = 10_000_000;
			let back = hyper_params(
				&train_config(&params),
				&lora_settings(&params),
				quant(params.method),
				family,
			)
			.unwrap();
			// The eval split is the worker's; a trainer run holds out nothing itself.
			assert_eq!(back, HyperParams { eval_fraction: 0, ..params });
		}
	}

	#[test]
	fn values_a_job_cannot_hold_are_refused_by_name() {
		let lora = LoraSettings::defaults(Family::Llama);
		let train = TrainConfig { learning_rate: -1e-4, ..TrainConfig::default() };
		let error = hyper_params(&train, &lora, None, Family::Llama).unwrap_err().to_string();
		assert!(error.starts_with("invalid hyper-parameter learning_rate"), "{error}");
		let train = TrainConfig { epochs: 70_000, ..TrainConfig::default() };
		let error = hyper_params(&train, &lora, None, Family::Llama).unwrap_err().to_string();
		assert!(error.contains("epochs: 70000 is more than a job can hold"), "{error}");
	}
}
