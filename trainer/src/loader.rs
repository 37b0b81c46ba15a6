//! Opening base models: Hugging Face directories and GGUF files.
//!
//! - **HF directory**: `config.json`; `model.safetensors`, or shards listed by
//!   `model.safetensors.index.json`; `tokenizer.json`. Tensors are memory-mapped and converted
//!   to `f32` one at a time, so QLoRA quantises layer by layer without a full-precision copy.
//! - **GGUF** (LLaMA architecture): the hyper-parameters come from the `llama.*` metadata, the
//!   tensors are dequantised and renamed to HF's names, and q/k rows are un-permuted (llama.cpp's
//!   converter interleaves each head's two rotary halves; this decoder uses HF's half-split
//!   layout). The tokenizer is rebuilt from `tokenizer.ggml.*` unless a `tokenizer.json` sits
//!   beside the file or is given.

use crate::{
	config::ModelConfig,
	families::{gguf_tensor_name, unpermute_gguf_rows},
	model::WeightSource,
	Error, Result,
};
use candle_core::{quantized::gguf_file, safetensors::MmapedSafetensors, DType, Device, Tensor};
use serde_json::{json, Value};
use std::{
	collections::{BTreeSet, HashMap, HashSet},
	path::{Path, PathBuf},
};
use tokenizers::Tokenizer;

/// An opened base model: its configuration, tokenizer and tensors.
pub struct Checkpoint {
	/// The decoder's configuration.
	pub config: ModelConfig,
	/// The tokenizer.
	pub tokenizer: Tokenizer,
	/// The tensors.
	pub weights: Box<dyn WeightSource>,
	/// What the adapter records as `base_model_name_or_path`.
	pub name: String,
	/// The files the weights came from.
	pub files: Vec<PathBuf>,
	/// The file the tokenizer came from: a `tokenizer.json`, or the GGUF file whose metadata
	/// holds it. A model registry hashes it.
	pub tokenizer_file: PathBuf,
	/// The `config.json` it was read from (or, for GGUF, built from the metadata).
	pub hf_config: Value,
}

impl Checkpoint {
	/// Lets go of the checkpoint's tensors once a model is built from them. The model keeps
	/// its own stacked or quantised copies, so a GGUF's dequantised tensors would otherwise
	/// stay resident beside them for the whole run (SmolLM2's 0.5 GB).
	pub fn release_weights(&mut self) {
		self.weights = Box::new(MemoryWeights(HashMap::new()));
	}
}

fn read_json(path: &Path, what: &'static str) -> Result<Value> {
	let text = std::fs::read_to_string(path)
		.map_err(|_| Error::Missing { what, path: path.to_path_buf() })?;
	serde_json::from_str(&text).map_err(|e| Error::Corrupt {
		what,
		path: path.to_path_buf(),
		reason: e.to_string(),
	})
}

fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
	if !path.exists() {
		return Err(Error::Missing { what: "tokenizer.json", path: path.to_path_buf() });
	}
	Tokenizer::from_file(path).map_err(|e| Error::Corrupt {
		what: "tokenizer.json",
		path: path.to_path_buf(),
		reason: e.to_string(),
	})
}

/// Refuses a tokenizer that can emit ids beyond the embedding matrix. (Models often pad their
/// vocabulary past the tokenizer's, which is fine.)
fn check_tokenizer(tokenizer: &Tokenizer, config: &ModelConfig) -> Result<()> {
	let tokens = tokenizer.get_vocab_size(true);
	if tokens > config.vocab_size {
		return Err(Error::TokenizerMismatch { tokenizer: tokens, model: config.vocab_size });
	}
	Ok(())
}

/// Opens a HF model directory or a `.gguf` file. `tokenizer` overrides the tokenizer file.
pub fn open(path: &Path, tokenizer: Option<&Path>) -> Result<Checkpoint> {
	if !path.exists() {
		return Err(Error::Missing { what: "base model", path: path.to_path_buf() });
	}
	if path.is_file() {
		return open_gguf(path, tokenizer);
	}
	let config_path = path.join("config.json");
	if !config_path.exists() {
		// A directory holding just a GGUF file and perhaps its tokenizer.
		let ggufs: Vec<PathBuf> = std::fs::read_dir(path)
			.map_err(Error::io(path))?
			.filter_map(|e| e.ok().map(|e| e.path()))
			.filter(|p| p.extension().is_some_and(|x| x == "gguf"))
			.collect();
		if let [gguf] = ggufs.as_slice() {
			return open_gguf(gguf, tokenizer);
		}
		return Err(Error::Missing { what: "config.json", path: config_path });
	}
	let hf_config = read_json(&config_path, "config.json")?;
	let config = ModelConfig::from_hf(&hf_config).map_err(|e| match e {
		Error::Corrupt { what, reason, .. } => {
			Error::Corrupt { what, path: config_path.clone(), reason }
		},
		other => other,
	})?;
	let files = safetensors_files(path)?;
	let weights = SafetensorsWeights::open(&files)?;
	let tokenizer_file =
		tokenizer.map(Path::to_path_buf).unwrap_or_else(|| path.join("tokenizer.json"));
	let tokenizer = load_tokenizer(&tokenizer_file)?;
	check_tokenizer(&tokenizer, &config)?;
	Ok(Checkpoint {
		config,
		tokenizer,
		weights: Box::new(weights),
		name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
		files,
		tokenizer_file,
		hf_config,
	})
}

/// The weight files of a HF directory: the shards named by the index, or the single file.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
	let index = dir.join("model.safetensors.index.json");
	if index.exists() {
		let json = read_json(&index, "safetensors index")?;
		let map =
			json.get("weight_map").and_then(Value::as_object).ok_or_else(|| Error::Corrupt {
				what: "safetensors index",
				path: index.clone(),
				reason: "no weight_map object".into(),
			})?;
		let shards: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
		let files: Vec<PathBuf> = shards.into_iter().map(|s| dir.join(s)).collect();
		if let Some(missing) = files.iter().find(|f| !f.exists()) {
			return Err(Error::Missing { what: "safetensors shard", path: missing.clone() });
		}
		return Ok(files);
	}
	let single = dir.join("model.safetensors");
	if single.exists() {
		return Ok(vec![single]);
	}
	Err(Error::Missing {
		what: "model.safetensors (or model.safetensors.index.json)",
		path: single,
	})
}

/// Memory-mapped safetensors, one or many shards.
pub struct SafetensorsWeights {
	tensors: MmapedSafetensors,
	names: HashSet<String>,
}

impl SafetensorsWeights {
	/// Maps `files`; a file that does not parse is named in the error.
	pub fn open(files: &[PathBuf]) -> Result<Self> {
		// SAFETY: the files are opened read-only; the trainer never writes base weights, and
		// a file changed underneath a running trainer is outside what it promises.
		let tensors = unsafe { MmapedSafetensors::multi(files) }.map_err(|error| {
			// Only on failure: open the shards one by one to say which is broken.
			let broken = files.iter().find_map(|file| {
				// SAFETY: as above.
				unsafe { MmapedSafetensors::new(file) }.err().map(|e| (file.clone(), e.to_string()))
			});
			let (path, reason) = broken.unwrap_or_else(|| (files[0].clone(), error.to_string()));
			Error::Corrupt { what: "safetensors file", path, reason }
		})?;
		let names = tensors.tensors().into_iter().map(|(n, _)| n).collect();
		Ok(Self { tensors, names })
	}
}

impl WeightSource for SafetensorsWeights {
	fn tensor(&self, name: &str, device: &Device) -> Result<Option<Tensor>> {
		if !self.names.contains(name) {
			return Ok(None);
		}
		Ok(Some(self.tensors.load(name, device)?.to_dtype(DType::F32)?))
	}

	fn names(&self) -> Vec<String> {
		let mut names: Vec<String> = self.names.iter().cloned().collect();
		names.sort();
		names
	}
}

/// Tensors already in memory (dequantised GGUF, or built by a test).
pub struct MemoryWeights(pub HashMap<String, Tensor>);

impl WeightSource for MemoryWeights {
	fn tensor(&self, name: &str, device: &Device) -> Result<Option<Tensor>> {
		self.0.get(name).map(|t| Ok(t.to_device(device)?.to_dtype(DType::F32)?)).transpose()
	}

	fn names(&self) -> Vec<String> {
		let mut names: Vec<String> = self.0.keys().cloned().collect();
		names.sort();
		names
	}
}

fn gguf_corrupt(path: &Path, reason: impl ToString) -> Error {
	Error::Corrupt { what: "GGUF file", path: path.to_path_buf(), reason: reason.to_string() }
}

fn open_gguf(path: &Path, tokenizer: Option<&Path>) -> Result<Checkpoint> {
	let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
	let content = gguf_file::Content::read(&mut file).map_err(|e| gguf_corrupt(path, e))?;
	let meta = |key: &str| content.metadata.get(key);
	let arch =
		meta("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
	if arch != "llama" {
		return Err(Error::UnknownFamily(format!(
			"GGUF architecture {arch:?} (GGUF loading covers the llama architecture)"
		)));
	}
	let int = |key: &str| -> Result<usize> {
		meta(&format!("llama.{key}"))
			.and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)))
			.map(|v| v as usize)
			.ok_or_else(|| gguf_corrupt(path, format!("missing metadata llama.{key}")))
	};
	let float = |key: &str, default: f64| -> f64 {
		meta(&format!("llama.{key}"))
			.and_then(|v| v.to_f32().ok())
			.map(f64::from)
			.unwrap_or(default)
	};
	let heads = int("attention.head_count")?;
	let kv_heads = int("attention.head_count_kv").unwrap_or(heads);
	let device = Device::Cpu;
	let mut tensors = HashMap::new();
	for name in content.tensor_infos.keys() {
		let Some(hf) = gguf_tensor_name(name) else { continue };
		let q = content.tensor(&mut file, name, &device).map_err(|e| gguf_corrupt(path, e))?;
		let mut t = q.dequantize(&device).map_err(|e| gguf_corrupt(path, e))?;
		if hf.ends_with("q_proj.weight") {
			t = unpermute_gguf_rows(&t, heads)?;
		} else if hf.ends_with("k_proj.weight") {
			t = unpermute_gguf_rows(&t, kv_heads)?;
		}
		tensors.insert(hf, t);
	}
	let vocab = tensors
		.get("model.embed_tokens.weight")
		.ok_or_else(|| gguf_corrupt(path, "no token_embd.weight tensor"))?
		.dim(0)?;
	let tied = !tensors.contains_key("lm_head.weight");
	let token_id = |key: &str| meta(&format!("tokenizer.ggml.{key}")).and_then(|v| v.to_u32().ok());
	let hf_config = json!({
		"model_type": "llama",
		"vocab_size": vocab,
		"hidden_size": int("embedding_length")?,
		"intermediate_size": int("feed_forward_length")?,
		"num_hidden_layers": int("block_count")?,
		"num_attention_heads": heads,
		"num_key_value_heads": kv_heads,
		"max_position_embeddings": int("context_length")?,
		"rms_norm_eps": float("attention.layer_norm_rms_epsilon", 1e-5),
		"rope_theta": float("rope.freq_base", 10_000.0),
		"tie_word_embeddings": tied,
		"eos_token_id": token_id("eos_token_id"),
		"bos_token_id": token_id("bos_token_id"),
	});
	let config = ModelConfig::from_hf(&hf_config)?;
	let beside = path.with_file_name("tokenizer.json");
	let (tokenizer, tokenizer_file) = match tokenizer {
		Some(t) => (load_tokenizer(t)?, t.to_path_buf()),
		None if beside.exists() => (load_tokenizer(&beside)?, beside),
		None => (gguf_tokenizer(&content, path)?, path.to_path_buf()),
	};
	check_tokenizer(&tokenizer, &config)?;
	Ok(Checkpoint {
		config,
		tokenizer,
		weights: Box::new(MemoryWeights(tensors)),
		name: meta("general.name")
			.and_then(|v| v.to_string().ok())
			.cloned()
			.unwrap_or_else(|| path.file_name().unwrap_or_default().to_string_lossy().into_owned()),
		files: vec![path.to_path_buf()],
		tokenizer_file,
		hf_config,
	})
}

/// Rebuilds a byte-level BPE `tokenizer.json` from GGUF's `tokenizer.ggml.*` metadata
/// (`model = "gpt2"`, as llama.cpp writes for GPT-2-style BPE vocabularies such as SmolLM's).
fn gguf_tokenizer(content: &gguf_file::Content, path: &Path) -> Result<Tokenizer> {
	let meta = |key: &str| content.metadata.get(&format!("tokenizer.ggml.{key}"));
	let model = meta("model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
	if model != "gpt2" {
		return Err(gguf_corrupt(
			path,
			format!(
				"its tokenizer model {model:?} cannot be rebuilt; pass --tokenizer tokenizer.json"
			),
		));
	}
	let strings = |key: &str| -> Result<Vec<String>> {
		meta(key)
			.and_then(|v| v.to_vec().ok())
			.ok_or_else(|| gguf_corrupt(path, format!("missing tokenizer.ggml.{key}")))?
			.iter()
			.map(|v| v.to_string().cloned().map_err(|e| gguf_corrupt(path, e)))
			.collect()
	};
	let tokens = strings("tokens")?;
	let merges = strings("merges")?;
	let types: Vec<i32> = meta("token_type")
		.and_then(|v| v.to_vec().ok())
		.map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
		.unwrap_or_default();
	let vocab: serde_json::Map<String, Value> =
		tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
	// Type 3 is a control token: matched whole, never split by BPE.
	let added: Vec<Value> = tokens
		.iter()
		.enumerate()
		.filter(|(i, _)| types.get(*i) == Some(&3))
		.map(|(i, t)| {
			json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": false, "special": true})
		})
		.collect();
	let spec = json!({
		"version": "1.0",
		"truncation": null,
		"padding": null,
		"added_tokens": added,
		"normalizer": null,
		"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": null,
		"decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
			"end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
			"vocab": vocab, "merges": merges},
	});
	spec.to_string()
		.parse::<Tokenizer>()
		.map_err(|e| gguf_corrupt(path, format!("its tokenizer cannot be rebuilt: {e}")))
}
