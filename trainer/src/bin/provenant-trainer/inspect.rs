//! `inspect`: what a model or adapter is.

use anyhow::Result;
use clap::Args;
use provenant_trainer::{adapter, config::Routing, loader};
use std::path::PathBuf;

/// Summarise a model directory, GGUF file or adapter directory.
#[derive(Args, Debug)]
pub(crate) struct Command {
	/// The model directory, GGUF file or adapter directory.
	path: PathBuf,
}

impl Command {
	pub(crate) fn execute(self) -> Result<()> {
		if self.path.join(adapter::CONFIG_FILE).exists() {
			return inspect_adapter(&self.path);
		}
		let checkpoint = loader::open(&self.path, None)?;
		let cfg = &checkpoint.config;
		println!("model       {}", checkpoint.name);
		println!("family      {}", cfg.family.name());
		println!("parameters  {:.2}M", cfg.parameter_count() as f64 / 1e6);
		println!("layers      {}", cfg.num_layers);
		println!(
			"hidden      {} (heads {} × {}, key/value heads {})",
			cfg.hidden_size, cfg.num_heads, cfg.head_dim, cfg.num_kv_heads
		);
		println!("ffn         {}", cfg.intermediate_size);
		if let Some(l) = cfg.latent_attention {
			let query = l.q_rank.map_or("not compressed".to_string(), |r| format!("rank {r}"));
			println!(
				"attention   latent: keys and values rank {}, queries {query}, per head {} + {} \
				 rotary, values {}",
				l.kv_rank, l.nope_dim, l.rope_dim, l.value_dim
			);
		}
		if let Some(e) = cfg.experts {
			let routing = match e.routing {
				Routing::Softmax { group_limited: false } => "softmax",
				Routing::Softmax { group_limited: true } => "softmax, group-limited",
				Routing::Sigmoid { .. } => "sigmoid, group-limited, bias-corrected",
			};
			println!(
				"experts     {} routed ({} a token, {routing}), {} shared, width {}, from layer {}",
				e.routed, e.per_token, e.shared, e.width, e.first_layer
			);
		}
		println!(
			"vocabulary  {} (tokenizer {})",
			cfg.vocab_size,
			checkpoint.tokenizer.get_vocab_size(true)
		);
		println!("positions   {}", cfg.max_positions);
		println!("targets     {}", cfg.linear_modules().join(", "));
		for file in &checkpoint.files {
			println!("file        {} sha256 {}", file.display(), adapter::sha256_file(file)?);
		}
		Ok(())
	}
}

fn inspect_adapter(dir: &std::path::Path) -> Result<()> {
	let config = adapter::read_config(dir)?;
	let weights = dir.join(adapter::WEIGHTS_FILE);
	let hash = adapter::sha256_file(&weights)?;
	let recorded = std::fs::read_to_string(dir.join(adapter::HASH_FILE)).unwrap_or_default();
	let recorded = recorded.split_whitespace().next().unwrap_or("");
	println!("adapter     {}", dir.display());
	println!("base        {}", config.base_model_name_or_path);
	println!(
		"r {}  alpha {}  dropout {}  rslora {}",
		config.r, config.lora_alpha, config.lora_dropout, config.use_rslora
	);
	println!("targets     {}", config.target_modules.join(", "));
	let tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu)?;
	let params: usize = tensors.values().map(|t| t.elem_count()).sum();
	println!("tensors     {} ({} parameters)", tensors.len(), params);
	println!("sha256      {hash}");
	match recorded {
		"" => println!("recorded    (no {} file)", adapter::HASH_FILE),
		r if r == hash => println!("recorded    matches"),
		r => anyhow::bail!(
			"the recorded sha256 {r} does not match the file: the adapter was changed"
		),
	}
	Ok(())
}
