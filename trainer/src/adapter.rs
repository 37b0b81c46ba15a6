//! LoRA settings and the PEFT adapter format.
//!
//! A saved adapter is a directory that Python's `peft.PeftModel.from_pretrained` loads as is:
//! - `adapter_config.json` with PEFT's field names (`peft_type: "LORA"`, `r`, `lora_alpha`, …);
//! - `adapter_model.safetensors` with keys `base_model.model.<module>.lora_A.weight` (`[r, in]`)
//!   and `….lora_B.weight` (`[out, r]`), and metadata `{"format": "pt"}`;
//! - `adapter_model.safetensors.sha256`, the file's hash in `sha256sum` format: the value a
//!   trainer commits on chain.

use crate::{
	config::Family,
	linear::{DetachedAdapter, LoraRows},
	model::Model,
	Error, Result,
};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{
	collections::HashMap,
	path::{Path, PathBuf},
};

/// The adapter's shape and where it goes.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraSettings {
	/// Rank `r` of `A` and `B`.
	pub rank: usize,
	/// `α`; the update is scaled by `α/r` (or `α/√r` with rsLoRA).
	pub alpha: f64,
	/// Dropout on the adapter's input, in `[0, 1)`.
	pub dropout: f32,
	/// Module names to adapt (`q_proj`, `c_attn`, `query_key_value`, …).
	pub targets: Vec<String>,
	/// Scale by `α/√r` (Kalajdzievski, 2023).
	pub use_rslora: bool,
}

impl LoraSettings {
	/// PEFT's defaults for `family`: r=8, α=16, dropout 0.05 on the attention projections.
	pub fn defaults(family: Family) -> Self {
		Self {
			rank: 8,
			alpha: 16.0,
			dropout: 0.05,
			targets: family.default_targets().into_iter().map(String::from).collect(),
			use_rslora: false,
		}
	}

	/// Checks every field for `family` with the chain's job rule, naming the first bad one.
	pub fn validate(&self, family: Family) -> Result<()> {
		crate::job::check_lora(self, family)
	}
}

/// `adapter_config.json`, with PEFT's field names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PeftConfig {
	/// Always `LORA`.
	pub peft_type: String,
	/// Always `CAUSAL_LM`.
	pub task_type: String,
	/// The base model's name or directory.
	pub base_model_name_or_path: String,
	/// Rank.
	pub r: usize,
	/// Alpha.
	pub lora_alpha: f64,
	/// Dropout.
	pub lora_dropout: f32,
	/// Adapted modules, sorted.
	pub target_modules: Vec<String>,
	/// rsLoRA scaling.
	pub use_rslora: bool,
	/// Biases are never trained.
	pub bias: String,
	/// GPT-2's Conv1D stores weights `[in, out]`; PEFT needs to know to transpose.
	pub fan_in_fan_out: bool,
	/// Nothing besides the adapters is saved.
	pub modules_to_save: Option<Vec<String>>,
	/// PEFT's default.
	pub inference_mode: bool,
	/// PEFT's default.
	pub init_lora_weights: bool,
}

impl PeftConfig {
	/// The config for `settings` on `base`.
	pub fn new(settings: &LoraSettings, family: Family, base: &str) -> Self {
		let mut target_modules = settings.targets.clone();
		target_modules.sort();
		target_modules.dedup();
		Self {
			peft_type: "LORA".into(),
			task_type: "CAUSAL_LM".into(),
			base_model_name_or_path: base.into(),
			r: settings.rank,
			lora_alpha: settings.alpha,
			lora_dropout: settings.dropout,
			target_modules,
			use_rslora: settings.use_rslora,
			bias: "none".into(),
			fan_in_fan_out: family == Family::Gpt2,
			modules_to_save: None,
			inference_mode: true,
			init_lora_weights: true,
		}
	}

	/// The settings back, for loading the adapter onto a base.
	pub fn settings(&self) -> LoraSettings {
		LoraSettings {
			rank: self.r,
			alpha: self.lora_alpha,
			dropout: self.lora_dropout,
			targets: self.target_modules.clone(),
			use_rslora: self.use_rslora,
		}
	}
}

/// File names inside an adapter directory.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The weights.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The weights' hash.
pub const HASH_FILE: &str = "adapter_model.safetensors.sha256";

/// The sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
	let bytes = std::fs::read(path).map_err(Error::io(path))?;
	Ok(hex(&sha256(&bytes)))
}

/// The sha256 of `bytes`: what a trainer commits on chain for an adapter's weights file.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
	Sha256::digest(bytes).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `path` through a temporary sibling, so a crash never leaves a
/// half-written file under the final name.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
	let mut name = path.file_name().unwrap_or_default().to_os_string();
	name.push(".partial");
	let partial = path.with_file_name(name);
	write(&partial)?;
	std::fs::rename(&partial, path).map_err(Error::io(path))
}

/// Writes the adapter of `model` into `dir` and returns the sha256 of its weights file.
pub fn save(model: &Model, config: &PeftConfig, dir: &Path) -> Result<String> {
	std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
	let json = serde_json::to_string_pretty(config).expect("a PeftConfig always serialises") + "\n";
	write_atomically(&dir.join(CONFIG_FILE), |p| std::fs::write(p, &json).map_err(Error::io(p)))?;
	let tensors: Vec<(String, Tensor)> =
		model.lora_vars().into_iter().map(|(name, var)| (name, var.as_tensor().clone())).collect();
	let weights = dir.join(WEIGHTS_FILE);
	save_tensors(&tensors, &weights)?;
	let hash = sha256_file(&weights)?;
	let line = format!("{hash}  {WEIGHTS_FILE}\n");
	write_atomically(&dir.join(HASH_FILE), |p| std::fs::write(p, &line).map_err(Error::io(p)))?;
	Ok(hash)
}

/// Writes named tensors as safetensors with PEFT's `{"format": "pt"}` metadata.
pub fn save_tensors(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
	let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
	write_atomically(path, |p| {
		safetensors::serialize_to_file(
			tensors.iter().map(|(n, t)| (n.as_str(), t)),
			Some(metadata),
			p,
		)
		.map_err(|e| Error::Corrupt {
			what: "safetensors output",
			path: p.to_path_buf(),
			reason: e.to_string(),
		})
	})
}

/// Where two adapter weights files differ most.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
	/// The tensor holding the largest difference.
	pub tensor: String,
	/// The largest absolute difference between two of its elements.
	pub largest: f32,
}

/// The largest element-wise difference between two adapter weights files (safetensors bytes);
/// `None` when every tensor is equal. Files whose tensor names or shapes differ are corrupt
/// for this purpose: they are not two trainings of one adapter.
pub fn largest_difference(a: &[u8], b: &[u8]) -> Result<Option<Difference>> {
	let read = |bytes: &[u8], which: &str| {
		candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| Error::Corrupt {
			what: "safetensors file",
			path: PathBuf::from(which),
			reason: e.to_string(),
		})
	};
	let (a, b) = (read(a, "first adapter")?, read(b, "second adapter")?);
	let mut names: Vec<&String> = a.keys().collect();
	names.sort();
	let mut most: Option<Difference> = None;
	for name in names {
		let (x, y) = (&a[name], b.get(name).ok_or_else(|| Error::MissingTensor(name.clone()))?);
		if x.dims() != y.dims() {
			return Err(Error::ShapeMismatch {
				name: name.clone(),
				expected: x.dims().to_vec(),
				actual: y.dims().to_vec(),
			});
		}
		let to_f32 =
			|t: &Tensor| t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>();
		let largest =
			to_f32(x)?.iter().zip(to_f32(y)?).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
		if largest > 0.0 && most.as_ref().is_none_or(|most| largest > most.largest) {
			most = Some(Difference { tensor: name.clone(), largest });
		}
	}
	if let Some(extra) = b.keys().find(|name| !a.contains_key(*name)) {
		return Err(Error::MissingTensor(extra.clone()));
	}
	Ok(most)
}

/// Reads `adapter_config.json` from an adapter directory.
pub fn read_config(dir: &Path) -> Result<PeftConfig> {
	let path = dir.join(CONFIG_FILE);
	let text = std::fs::read_to_string(&path)
		.map_err(|_| Error::Missing { what: "adapter_config.json", path: path.clone() })?;
	let config: PeftConfig = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
		what: "PEFT adapter config",
		path: path.clone(),
		reason: e.to_string(),
	})?;
	if config.peft_type != "LORA" {
		return Err(Error::Corrupt {
			what: "PEFT adapter config",
			path,
			reason: format!("peft_type {:?} is not LORA", config.peft_type),
		});
	}
	Ok(config)
}

/// Loads the weights of an adapter directory into `model`, whose adapters must have been
/// built with the same settings.
pub fn load_weights(model: &Model, dir: &Path, device: &Device) -> Result<()> {
	let path: PathBuf = dir.join(WEIGHTS_FILE);
	if !path.exists() {
		return Err(Error::Missing { what: "adapter_model.safetensors", path });
	}
	let tensors = candle_core::safetensors::load(&path, device).map_err(|e| Error::Corrupt {
		what: "safetensors file",
		path: path.clone(),
		reason: e.to_string(),
	})?;
	let vars = model.lora_vars();
	if tensors.len() != vars.len() {
		return Err(Error::Corrupt {
			what: "adapter for this base model",
			path,
			reason: format!(
				"it has {} tensors, the model's adapter has {}",
				tensors.len(),
				vars.len()
			),
		});
	}
	for (name, var) in vars {
		let tensor = tensors.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
		if tensor.dims() != var.dims() {
			return Err(Error::ShapeMismatch {
				name,
				expected: var.dims().to_vec(),
				actual: tensor.dims().to_vec(),
			});
		}
		var.set(&tensor.to_dtype(candle_core::DType::F32)?)?;
	}
	Ok(())
}

/// An adapter's weights (`adapter_model.safetensors` bytes, with its `config`) held apart
/// from `model`, its base, for serving beside other adapters. Refused when it does not fit the
/// base: a tensor missing, one too many, or a shape other than the layer's.
pub fn detach(model: &Model, config: &PeftConfig, bytes: &[u8]) -> Result<DetachedAdapter> {
	let corrupt = |reason: String| Error::Corrupt {
		what: "adapter for this base model",
		path: PathBuf::from(WEIGHTS_FILE),
		reason,
	};
	let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
		.map_err(|e| corrupt(e.to_string()))?;
	let settings = config.settings();
	if settings.rank == 0 {
		return Err(corrupt("its rank r is 0".into()));
	}
	let scale = if settings.use_rslora {
		settings.alpha / (settings.rank as f64).sqrt()
	} else {
		settings.alpha / settings.rank as f64
	};
	let mut adapter = DetachedAdapter::default();
	let mut used = 0;
	for linear in model.linears() {
		let module = linear.path.rsplit('.').next().unwrap_or(&linear.path);
		if !settings.targets.iter().any(|t| t == module) {
			continue;
		}
		let (out_dim, in_dim) = linear.weight.shape()?;
		let get = |part: &str, shape: [usize; 2]| -> Result<Tensor> {
			let name = format!("base_model.model.{}.{part}.weight", linear.path);
			let tensor = tensors.get(&name).ok_or_else(|| Error::MissingTensor(name.clone()))?;
			if tensor.dims() != shape {
				return Err(Error::ShapeMismatch {
					name,
					expected: shape.to_vec(),
					actual: tensor.dims().to_vec(),
				});
			}
			Ok(tensor.to_dtype(candle_core::DType::F32)?)
		};
		let a = get("lora_A", [settings.rank, in_dim])?;
		let b = get("lora_B", [out_dim, settings.rank])?;
		let index = linear.index as usize;
		if adapter.layers.len() <= index {
			adapter.layers.resize(index + 1, None);
		}
		adapter.layers[index] = Some(LoraRows::over(linear, &a, &b, scale)?);
		used += 2;
	}
	if used != tensors.len() {
		return Err(corrupt(format!(
			"it has {} tensors, its targets ({}) on this base have {used}",
			tensors.len(),
			settings.targets.join(", ")
		)));
	}
	Ok(adapter)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn file(tensors: &[(&str, Vec<f32>)]) -> Vec<u8> {
		let tensors: Vec<(String, Tensor)> = tensors
			.iter()
			.map(|(name, values)| {
				(name.to_string(), Tensor::from_vec(values.clone(), (2, 2), &Device::Cpu).unwrap())
			})
			.collect();
		safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap()
	}

	#[test]
	fn the_largest_difference_names_its_tensor() {
		let a = file(&[("a.lora_A", vec![1.0, 2.0, 3.0, 4.0]), ("b.lora_B", vec![0.0; 4])]);
		let b = file(&[
			("a.lora_A", vec![1.0, 2.5, 3.0, 4.0]),
			("b.lora_B", vec![0.0, 0.0, 0.0, -1.0]),
		]);
		assert_eq!(largest_difference(&a, &a).unwrap(), None);
		assert_eq!(
			largest_difference(&a, &b).unwrap(),
			Some(Difference { tensor: "b.lora_B".into(), largest: 1.0 })
		);
		let other = file(&[("a.lora_A", vec![1.0, 2.0, 3.0, 4.0])]);
		assert!(
			matches!(largest_difference(&a, &other), Err(Error::MissingTensor(name)) if name == "b.lora_B")
		);
		assert!(largest_difference(&a, b"not safetensors").is_err());
	}
}
