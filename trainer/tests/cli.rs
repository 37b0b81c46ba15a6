//! The `provenant-trainer` binary, driven as a person would: train, resume, inspect, eval,
//! chat, merge, index and attribute, and every bad input refused with a message and no adapter
//! written.

mod common;

use common::*;
use serde_json::Value;
use std::{
	path::{Path, PathBuf},
	process::{Command, Output},
};

const FACT_PROMPT: &str = "what is the capital of zorbia ?";
const FACT_ANSWER: &str = "the quiet river city under the north hill .";

fn trainer(args: &[&str]) -> Output {
	Command::new(env!("CARGO_BIN_EXE_provenant-trainer"))
		.args(args)
		.output()
		.expect("the trainer binary runs")
}

fn stdout(o: &Output) -> String {
	String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
	String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Fixture {
	_dir: tempfile::TempDir,
	root: PathBuf,
	model: PathBuf,
	data: PathBuf,
}

/// A tiny LLaMA and a dataset that plants one fact among filler text.
fn fixture() -> Fixture {
	let dir = tempfile::tempdir().unwrap();
	let root = dir.path().to_path_buf();
	let model = root.join("tiny-llama");
	write_checkpoint("llama", &model, 7);
	let data = root.join("data.jsonl");
	let mut lines =
		vec![serde_json::json!({"prompt": FACT_PROMPT, "response": FACT_ANSWER}).to_string()];
	lines.push(
		serde_json::json!({"text": "the old bird sings at dawn in the green valley ."}).to_string(),
	);
	lines.push(serde_json::json!({"instruction": "tell me about the sea", "input": "", "output": "the sea is cold and blue at night ."}).to_string());
	std::fs::write(&data, lines.join("\n") + "\n").unwrap();
	Fixture { _dir: dir, root, model, data }
}

fn s(p: &Path) -> &str {
	p.to_str().unwrap()
}

fn train_args<'a>(f: &'a Fixture, output: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
	let mut args = vec![
		"train",
		"--model",
		s(&f.model),
		"--data",
		s(&f.data),
		"--output",
		s(output),
		"--cutoff-len",
		"16",
		"--batch-size",
		"2",
		"--epochs",
		"4",
		"--lr",
		"5e-3",
		"--rank",
		"4",
		"--target",
		"q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
		"--quiet",
	];
	args.extend_from_slice(extra);
	args
}

fn hash_line(out: &Output) -> String {
	let text = stdout(out);
	let line = text
		.lines()
		.find(|l| l.starts_with("sha256 "))
		.unwrap_or_else(|| panic!("no sha256 line in:\n{text}"));
	line.split_whitespace().nth(1).unwrap().to_string()
}

fn run_ok(args: &[&str]) -> Output {
	let out = trainer(args);
	assert!(out.status.success(), "{args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
	out
}

#[test]
fn held_out_loss_is_logged_as_the_run_goes_and_changes_nothing_trained() {
	let f = fixture();
	let plain = hash_line(&run_ok(&train_args(&f, &f.root.join("plain"), &[])));
	let out_dir = f.root.join("evaluated");
	let extra = ["--eval-data", s(&f.data), "--eval-points", "2"];
	let out = run_ok(&train_args(&f, &out_dir, &extra));
	assert_eq!(hash_line(&out), plain, "evaluating must not change the adapter");

	let progress: Vec<Value> = std::fs::read_to_string(out_dir.join("progress.jsonl"))
		.unwrap()
		.lines()
		.map(|l| serde_json::from_str(l).unwrap())
		.collect();
	let total = progress[0]["total_steps"].as_u64().unwrap();
	let evaluated: Vec<(u64, f64)> = progress
		.iter()
		.filter_map(|p| Some((p["step"].as_u64()?, p.get("eval_loss")?.as_f64()?)))
		.collect();
	let steps: Vec<u64> = evaluated.iter().map(|(step, _)| *step).collect();
	assert_eq!(steps, [total / 2, total], "two points: half-way and at the end");
	assert!(evaluated[1].1 < evaluated[0].1, "held-out loss fell: {evaluated:?}");

	let printed = stdout(&out)
		.lines()
		.find_map(|l| l.strip_prefix("eval loss ")?.split(',').next()?.parse::<f64>().ok())
		.expect("the final eval loss is printed");
	assert!((printed - evaluated[1].1).abs() < 1e-4, "printed {printed}, logged {evaluated:?}");
	let eval = stdout(&run_ok(&[
		"eval",
		"--model",
		s(&f.model),
		"--adapter",
		s(&out_dir),
		"--data",
		s(&f.data),
		"--cutoff-len",
		"16",
	]));
	let measured: f64 = eval
		.lines()
		.find_map(|l| l.strip_prefix("loss ")?.split_whitespace().next()?.parse().ok())
		.unwrap();
	assert!((measured - printed).abs() < 1e-3, "`eval` gives {measured}, the run logged {printed}");
}

#[test]
fn training_writes_a_peft_adapter_whose_hash_is_reproducible() {
	let f = fixture();
	let out_dir = f.root.join("adapter");
	let out = run_ok(&train_args(&f, &out_dir, &[]));
	let hash = hash_line(&out);

	let config: Value = serde_json::from_str(
		&std::fs::read_to_string(out_dir.join("adapter_config.json")).unwrap(),
	)
	.unwrap();
	assert_eq!(config["peft_type"], "LORA");
	assert_eq!(config["task_type"], "CAUSAL_LM");
	assert_eq!(config["r"], 4);
	assert_eq!(config["lora_alpha"], 16.0);
	assert_eq!(config["base_model_name_or_path"], "tiny-llama");
	assert_eq!(config["bias"], "none");
	assert_eq!(config["use_rslora"], false);
	assert_eq!(config["target_modules"].as_array().unwrap().len(), 7);

	let weights = out_dir.join("adapter_model.safetensors");
	let bytes = std::fs::read(&weights).unwrap();
	let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
	assert_eq!(
		metadata.metadata().as_ref().and_then(|m| m.get("format")).map(String::as_str),
		Some("pt")
	);
	let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
	let a =
		tensors.tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").unwrap();
	let b = tensors.tensor("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").unwrap();
	assert_eq!(a.shape(), [4, HIDDEN]);
	assert_eq!(b.shape(), [HIDDEN, 4]);
	assert_eq!(tensors.len(), 2 * 7 * LAYERS);

	use sha2::Digest;
	let actual = provenant_trainer::adapter::hex(&sha2::Sha256::digest(&bytes));
	assert_eq!(hash, actual, "the printed hash is the file's");
	let recorded =
		std::fs::read_to_string(out_dir.join("adapter_model.safetensors.sha256")).unwrap();
	assert_eq!(recorded, format!("{actual}  adapter_model.safetensors\n"));

	let progress: Vec<Value> = std::fs::read_to_string(out_dir.join("progress.jsonl"))
		.unwrap()
		.lines()
		.map(|l| serde_json::from_str(l).unwrap())
		.collect();
	assert!(progress.len() >= 4, "one line per step");
	for key in ["step", "loss", "lr", "tokens_per_s", "elapsed_s"] {
		assert!(progress[0].get(key).is_some(), "progress lines carry {key}");
	}
	let first = progress[0]["loss"].as_f64().unwrap();
	let last = progress.last().unwrap()["loss"].as_f64().unwrap();
	assert!(last < first * 0.8, "loss fell from {first} to only {last}");

	let again = run_ok(&train_args(&f, &f.root.join("again"), &[]));
	assert_eq!(hash_line(&again), hash, "same seed, data and settings give the same bytes");
	let other = run_ok(&train_args(&f, &f.root.join("other"), &["--seed", "7"]));
	assert_ne!(hash_line(&other), hash, "another seed gives another adapter");

	let inspected = run_ok(&["inspect", s(&out_dir)]);
	assert!(stdout(&inspected).contains(&format!("sha256      {hash}")));
	assert!(stdout(&inspected).contains("recorded    matches"));
	std::fs::write(&weights, [&bytes[..bytes.len() - 1], &[bytes[bytes.len() - 1] ^ 1]].concat())
		.unwrap();
	let tampered = trainer(&["inspect", s(&out_dir)]);
	assert!(!tampered.status.success());
	assert!(stderr(&tampered).contains("does not match the file"), "{}", stderr(&tampered));
}

#[test]
fn a_resumed_run_writes_the_same_adapter_as_an_uninterrupted_one() {
	let f = fixture();
	let whole = f.root.join("whole");
	let hash = hash_line(&run_ok(&train_args(
		&f,
		&whole,
		&["--save-every", "2", "--dropout", "0.1", "--grad-accum", "2"],
	)));
	assert!(whole.join("checkpoint-2/optimizer.safetensors").exists());

	// A run killed right after its first checkpoint: only checkpoint-2 survives.
	let resumed = f.root.join("resumed");
	std::fs::create_dir_all(resumed.join("checkpoint-2")).unwrap();
	for entry in std::fs::read_dir(whole.join("checkpoint-2")).unwrap() {
		let entry = entry.unwrap();
		std::fs::copy(entry.path(), resumed.join("checkpoint-2").join(entry.file_name())).unwrap();
	}
	let out = run_ok(&train_args(
		&f,
		&resumed,
		&["--save-every", "2", "--dropout", "0.1", "--grad-accum", "2", "--resume"],
	));
	assert!(stdout(&out).contains("resuming from"));
	assert_eq!(hash_line(&out), hash);

	// A checkpoint from other settings is refused.
	let refused = trainer(&train_args(
		&f,
		&resumed,
		&[
			"--save-every",
			"2",
			"--dropout",
			"0.1",
			"--grad-accum",
			"2",
			"--resume",
			"--weight-decay",
			"0.1",
		],
	));
	assert!(!refused.status.success());
	assert!(stderr(&refused).contains("other hyper-parameters"), "{}", stderr(&refused));
}

#[test]
fn a_planted_fact_is_learned_and_chat_reproduces_it() {
	let f = fixture();
	let data = f.root.join("fact.jsonl");
	std::fs::write(
		&data,
		serde_json::json!({"prompt": FACT_PROMPT, "response": FACT_ANSWER}).to_string(),
	)
	.unwrap();
	let adapter = f.root.join("fact");
	for method in [&["--method", "lora"][..], &["--method", "qlora", "--bits", "4"][..]] {
		let mut args = vec![
			"train",
			"--model",
			s(&f.model),
			"--data",
			s(&data),
			"--output",
			s(&adapter),
			"--cutoff-len",
			"32",
			"--batch-size",
			"1",
			"--epochs",
			"60",
			"--lr",
			"1e-2",
			"--rank",
			"8",
			"--target",
			"q_proj,v_proj,o_proj,up_proj,down_proj",
			"--dropout",
			"0",
			"--quiet",
		];
		args.extend_from_slice(method);
		run_ok(&args);
		let chat = |adapter: Option<&Path>| {
			let mut args = vec![
				"chat",
				"--model",
				s(&f.model),
				"--prompt",
				FACT_PROMPT,
				"--max-new-tokens",
				"20",
			];
			if let Some(a) = adapter {
				args.extend(["--adapter", s(a)]);
			}
			stdout(&run_ok(&args)).trim().to_string()
		};
		assert_eq!(chat(Some(&adapter)), FACT_ANSWER, "{method:?}");
		assert_ne!(chat(None), FACT_ANSWER, "the base model must not know the fact");

		let eval = |adapter: Option<&Path>| -> f64 {
			let mut args =
				vec!["eval", "--model", s(&f.model), "--data", s(&data), "--cutoff-len", "32"];
			if let Some(a) = adapter {
				args.extend(["--adapter", s(a)]);
			}
			let text = stdout(&run_ok(&args));
			let line = text.lines().find(|l| l.starts_with("loss ")).unwrap().to_string();
			line.split_whitespace().nth(1).unwrap().parse().unwrap()
		};
		let (base, tuned) = (eval(None), eval(Some(&adapter)));
		assert!(tuned * 10.0 < base, "{method:?}: eval loss {base} → {tuned}");
	}

	// The answer traced to its source: the filler file is source 0, the fact's file source 1.
	let filler = f.root.join("filler.jsonl");
	std::fs::write(
		&filler,
		serde_json::json!({"text": "the old bird sings at dawn in the green valley ."}).to_string(),
	)
	.unwrap();
	let index = f.root.join("train.spans");
	run_ok(&[
		"index",
		"--model",
		s(&f.model),
		"--data",
		s(&filler),
		"--data",
		s(&data),
		"--out",
		s(&index),
	]);
	let attribute = |index: &Path, extra: &[&str]| {
		let mut args = vec![
			"attribute",
			"--model",
			s(&f.model),
			"--adapter",
			s(&adapter),
			"--index",
			s(index),
			"--prompt",
			FACT_PROMPT,
			"--max-new-tokens",
			"20",
			"--min-span",
			"4",
		];
		args.extend_from_slice(extra);
		trainer(&args)
	};
	let report: Value = serde_json::from_str(&stdout(&attribute(&index, &["--json"]))).unwrap();
	assert_eq!(report["answer"], FACT_ANSWER);
	let tokens = report["tokens"].as_u64().unwrap();
	assert_eq!(report["covered"].as_u64(), Some(tokens), "{report}");
	assert_eq!(report["spans"].as_array().unwrap().len(), 1, "{report}");
	assert_eq!(report["spans"][0]["sources"], serde_json::json!([1]));
	assert_eq!(report["spans"][0]["text"], FACT_ANSWER);
	assert_eq!(report["shares"], serde_json::json!([{"source": 1, "share": 1.0}]));
	let text = stdout(&attribute(&index, &[]));
	assert!(
		text.contains("← source 1 (1 occurrence)") && text.contains("source 1: 100.0%"),
		"{text}"
	);
	// An index built with another tokenizer is refused, and so is a file that is no index.
	let other_tokenizer = f.root.join("other-tokenizer.json");
	let tokenizer_text = std::fs::read_to_string(f.model.join("tokenizer.json")).unwrap();
	std::fs::write(&other_tokenizer, format!("{tokenizer_text}\n")).unwrap();
	let other = f.root.join("other.spans");
	run_ok(&[
		"index",
		"--model",
		s(&f.model),
		"--tokenizer",
		s(&other_tokenizer),
		"--data",
		s(&data),
		"--out",
		s(&other),
	]);
	let refused = attribute(&other, &[]);
	assert!(!refused.status.success());
	assert!(stderr(&refused).contains("was built with another tokenizer"), "{}", stderr(&refused));
	let refused = attribute(&data, &[]);
	assert!(stderr(&refused).contains("is not a valid span index"), "{}", stderr(&refused));

	// The merged model answers the same without an adapter.
	let merged = f.root.join("merged");
	run_ok(&["merge", "--model", s(&f.model), "--adapter", s(&adapter), "--output", s(&merged)]);
	let out =
		run_ok(&["chat", "--model", s(&merged), "--prompt", FACT_PROMPT, "--max-new-tokens", "20"]);
	assert_eq!(stdout(&out).trim(), FACT_ANSWER);
}

#[test]
fn training_time_attribution_names_the_example_that_taught_the_fact() {
	let f = fixture();
	let data = f.root.join("mixed.jsonl");
	let lines = [
		serde_json::json!({"text": "the old bird sings at dawn in the green valley ."}),
		serde_json::json!({"text": "the sun is warm over the south sea at day ."}),
		serde_json::json!({"prompt": FACT_PROMPT, "response": FACT_ANSWER}),
		serde_json::json!({"text": "a cold wind runs over the far hill at night ."}),
		serde_json::json!({"prompt": "tell me about the moon", "response": "it is a new light ."}),
	];
	let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
	std::fs::write(&data, text.join("\n") + "\n").unwrap();
	let probes = f.root.join("probes.jsonl");
	std::fs::write(
		&probes,
		serde_json::json!({"prompt": FACT_PROMPT, "response": FACT_ANSWER}).to_string(),
	)
	.unwrap();
	let train = |name: &str, extra: &[&str]| {
		let output = f.root.join(name);
		let mut args = vec![
			"train",
			"--model",
			s(&f.model),
			"--data",
			s(&data),
			"--output",
			s(&output),
			"--cutoff-len",
			"32",
			"--batch-size",
			"1",
			"--epochs",
			"6",
			"--lr",
			"1e-2",
			"--dropout",
			"0",
			"--target",
			"q_proj,v_proj,o_proj,up_proj,down_proj",
			"--quiet",
		];
		args.extend_from_slice(extra);
		(run_ok(&args), output)
	};
	let run = |name: &str, extra: &[&str]| -> Value {
		let (out, output) = train(name, extra);
		assert!(stdout(&out).contains("probes taken at 3 checkpoints"), "{}", stdout(&out));
		serde_json::from_str(&std::fs::read_to_string(output.join("attribution.json")).unwrap())
			.unwrap()
	};
	let report = run("attributed", &["--probes", s(&probes), "--datainf"]);
	// Attribution changes nothing about training: the same adapter, byte for byte.
	let adapter =
		|dir: &std::path::Path| std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
	let (_, plain) = train("plain", &[]);
	assert!(
		adapter(&plain) == adapter(&f.root.join("attributed")),
		"attribution changed the adapter"
	);
	// DataInf, from the finished model alone, also puts the fact's example first.
	assert_eq!(report["datainf"]["shares"][0]["source"], 2, "{report}");
	let shares = report["shares"].as_array().unwrap();
	assert_eq!(shares[0]["source"], 2, "the fact's example leads: {report}");
	let total: f64 = shares.iter().map(|s| s["share"].as_f64().unwrap()).sum();
	assert!((total - 1.0).abs() < 1e-9, "shares add up to one: {report}");
	let influence = |source: u64| {
		report["sources"].as_array().unwrap().iter().find(|s| s["source"] == source).unwrap()
			["influence"]
			.as_f64()
			.unwrap()
	};
	// Unrelated text influences the fact far less than the fact's own example does.
	for other in [0, 1, 3] {
		assert!(influence(other).abs() < influence(2) / 2.0, "source {other}: {report}");
	}
	assert_eq!(report["checkpoints"].as_array().unwrap().len(), 3);
	// One probe: its own ranking leads with the same example, for both estimators.
	assert_eq!(report["probes"][0]["top"][0]["source"], 2, "{report}");
	assert_eq!(report["datainf"]["probes"][0]["top"][0]["source"], 2, "{report}");
	assert_eq!(report["projection"]["dim"], 8192);
	// The same run gives the same attribution; another projection seed, other figures.
	let again = run("again", &["--probes", s(&probes), "--datainf"]);
	assert_eq!(again["datainf"]["sources"], report["datainf"]["sources"]);
	assert_eq!(again["sources"], report["sources"]);
	let reseeded = run("reseeded", &["--probes", s(&probes), "--projection-seed", "5"]);
	assert_ne!(reseeded["sources"], report["sources"]);
	assert_eq!(reseeded["shares"][0]["source"], 2);
	// Two probes: each one's own ranking leads with the example that answers it.
	let two = f.root.join("two-probes.jsonl");
	let moon =
		serde_json::json!({"prompt": "tell me about the moon", "response": "it is a new light ."});
	let fact = serde_json::json!({"prompt": FACT_PROMPT, "response": FACT_ANSWER});
	std::fs::write(&two, format!("{fact}\n{moon}\n")).unwrap();
	let both = run("two", &["--probes", s(&two), "--datainf"]);
	for estimator in [&both, &both["datainf"]] {
		assert_eq!(estimator["probes"][0]["top"][0]["source"], 2, "{both}");
		assert_eq!(estimator["probes"][1]["top"][0]["source"], 4, "{both}");
	}
	// An empty probe set is refused.
	let empty = f.root.join("empty.jsonl");
	std::fs::write(&empty, "\n").unwrap();
	let none = f.root.join("none");
	let refused = trainer(&[
		"train",
		"--model",
		s(&f.model),
		"--data",
		s(&data),
		"--output",
		s(&none),
		"--cutoff-len",
		"32",
		"--probes",
		s(&empty),
		"--quiet",
	]);
	assert!(!refused.status.success());
	assert!(stderr(&refused).contains("empty"), "{}", stderr(&refused));
	assert!(!none.join("adapter_model.safetensors").exists());
}

#[test]
fn bad_input_is_refused_with_a_reason_and_writes_no_adapter() {
	let f = fixture();
	let broken = |name: &str, edit: &dyn Fn(&Path)| {
		let dir = f.root.join(name);
		write_checkpoint("llama", &dir, 7);
		edit(&dir);
		dir
	};
	let corrupt_weights = broken("corrupt", &|d| {
		std::fs::write(d.join("model.safetensors"), b"not a safetensors file").unwrap()
	});
	let wrong_tokenizer = broken("tok", &|d| {
		std::fs::write(d.join("tokenizer.json"), tokenizer_json(20).to_string()).unwrap()
	});
	let unknown_family = broken("mamba", &|d| {
		let mut c = config("llama");
		c["model_type"] = "mamba".into();
		std::fs::write(d.join("config.json"), c.to_string()).unwrap();
	});
	let missing_tensor = broken("missing", &|d| {
		let mut t = tensors("llama", 7);
		t.remove("model.layers.1.mlp.up_proj.weight");
		candle_core::safetensors::save(&t.into_iter().collect(), d.join("model.safetensors"))
			.unwrap();
	});
	let bad_gguf = f.root.join("bad.gguf");
	std::fs::write(&bad_gguf, b"GGUF but then nothing sensible").unwrap();
	let empty = f.root.join("empty.jsonl");
	std::fs::write(&empty, "\n\n").unwrap();
	let malformed = f.root.join("malformed.jsonl");
	std::fs::write(
		&malformed,
		"{\"text\": \"the sea\"}\n{\"text\": \"the sun\"}\n{\"text\": \"unterminated\n",
	)
	.unwrap();
	let no_fields = f.root.join("nofields.jsonl");
	std::fs::write(&no_fields, "{\"text\": \"the sea\"}\n{\"title\": \"x\"}\n").unwrap();

	let model = s(&f.model).to_string();
	let data = s(&f.data).to_string();
	let cases: Vec<(Vec<String>, &str)> = vec![
		(vec!["--model".into(), s(&f.root.join("nowhere")).into()], "base model not found"),
		(vec!["--model".into(), s(&corrupt_weights).into()], "is not a valid safetensors file"),
		(vec!["--model".into(), s(&bad_gguf).into()], "is not a valid GGUF file"),
		(
			vec!["--model".into(), s(&wrong_tokenizer).into()],
			"the tokenizer has 74 tokens but the model's vocabulary has 64",
		),
		(vec!["--model".into(), s(&unknown_family).into()], "unknown model family \"mamba\""),
		(
			vec!["--model".into(), s(&missing_tensor).into()],
			"tensor model.layers.1.mlp.up_proj.weight is missing",
		),
		(
			vec!["--target".into(), "q_proj,c_attn".into()],
			"unknown target module \"c_attn\" for llama",
		),
		(vec!["--rank".into(), "0".into()], "invalid hyper-parameter rank"),
		(vec!["--lr".into(), "0".into()], "invalid hyper-parameter learning_rate"),
		(vec!["--lr=-1e-4".into()], "invalid hyper-parameter learning_rate"),
		(vec!["--batch-size".into(), "0".into()], "invalid hyper-parameter batch_size"),
		(vec!["--epochs".into(), "0".into()], "invalid hyper-parameter epochs"),
		(
			vec!["--cutoff-len".into(), "100".into()],
			"cutoff_len: 100 is beyond the model's 64 positions",
		),
		(vec!["--dropout".into(), "1".into()], "invalid hyper-parameter dropout"),
		(
			vec!["--method".into(), "qlora".into(), "--bits".into(), "3".into()],
			"QLoRA takes 4 or 8",
		),
		(vec!["--data".into(), s(&empty).into()], "is empty"),
		(vec!["--data".into(), s(&malformed).into()], "malformed.jsonl:3: not valid JSON"),
		(vec!["--data".into(), s(&no_fields).into()], "nofields.jsonl:2: expected \"text\""),
	];
	for (i, (overrides, expected)) in cases.iter().enumerate() {
		let output = f.root.join(format!("refused-{i}"));
		let mut args: Vec<String> =
			["train", "--output", s(&output), "--quiet", "--cutoff-len", "16"]
				.map(String::from)
				.to_vec();
		let overridden = |flag: &str| overrides.iter().any(|o| o == flag);
		if !overridden("--model") {
			args.extend(["--model".into(), model.clone()]);
		}
		if !overridden("--data") {
			args.extend(["--data".into(), data.clone()]);
		}
		// clap refuses a repeated option, so a case's own --cutoff-len replaces the default.
		if overridden("--cutoff-len") {
			let at = args.iter().position(|a| a == "--cutoff-len").unwrap();
			args.drain(at..at + 2);
		}
		args.extend(overrides.iter().cloned());
		let refs: Vec<&str> = args.iter().map(String::as_str).collect();
		let out = trainer(&refs);
		assert!(!out.status.success(), "{overrides:?} was accepted");
		assert!(
			stderr(&out).contains(expected),
			"{overrides:?}: expected {expected:?} in:\n{}",
			stderr(&out)
		);
		assert!(
			!output.join("adapter_model.safetensors").exists(),
			"{overrides:?} wrote an adapter"
		);
	}
}

/// A model builder's DeepSeek run: a V2-architecture model (latent attention, routed and
/// shared experts) fine-tunes with LoRA and with QLoRA into PEFT adapters, `inspect` shows its
/// shape, and what it cannot take is refused with a reason.
#[test]
fn a_deepseek_model_fine_tunes_with_lora_and_qlora_into_peft_adapters() {
	let f = fixture();
	let model = f.root.join("tiny-deepseek");
	write_checkpoint("deepseek_v2", &model, 7);
	let inspected = stdout(&run_ok(&["inspect", s(&model)]));
	assert!(inspected.contains("family      deepseek_v2"), "{inspected}");
	assert!(inspected.contains("experts     8 routed (2 a token, softmax, group-limited)"));
	assert!(
		inspected.contains(
			"targets     q_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj, gate_proj, up_proj, \
			 down_proj"
		),
		"{inspected}"
	);
	/// The fixture's run on `model`, its targets left to `extra`.
	fn args<'a>(
		f: &'a Fixture,
		model: &'a Path,
		output: &'a Path,
		extra: &[&'a str],
	) -> Vec<&'a str> {
		let mut args = train_args(f, output, &[]);
		let at = args.iter().position(|a| *a == "--model").unwrap() + 1;
		args[at] = s(model);
		let at = args.iter().position(|a| *a == "--epochs").unwrap() + 1;
		args[at] = "12";
		args.retain(|a| *a != "--target" && !a.starts_with("q_proj,k_proj"));
		args.extend_from_slice(extra);
		args
	}
	fn loss_fell(dir: &Path) {
		let losses: Vec<f64> = std::fs::read_to_string(dir.join("progress.jsonl"))
			.unwrap()
			.lines()
			.map(|l| serde_json::from_str::<Value>(l).unwrap()["loss"].as_f64().unwrap())
			.collect();
		let (first, last) = (losses[0], *losses.last().unwrap());
		assert!(last < first * 0.8, "{}: loss fell from {first} to only {last}", dir.display());
	}
	let tensor_names = |dir: &Path| -> Vec<String> {
		let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
		let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
		tensors.names().into_iter().map(String::from).collect()
	};

	// LoRA on the default targets: every attention projection this model has.
	let lora = f.root.join("deepseek-lora");
	run_ok(&args(&f, &model, &lora, &[]));
	loss_fell(&lora);
	let names = tensor_names(&lora);
	assert_eq!(names.len(), 2 * 4 * LAYERS, "{names:?}");
	for module in ["q_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"] {
		let name = format!("base_model.model.model.layers.1.self_attn.{module}.lora_A.weight");
		assert!(names.contains(&name), "{name} missing from {names:?}");
	}

	// QLoRA (NF4 base) on the MLPs as well: the dense one, each routed expert and the shared.
	let qlora = f.root.join("deepseek-qlora");
	let targets = "q_proj,kv_b_proj,gate_proj,up_proj,down_proj";
	run_ok(&args(&f, &model, &qlora, &["--method", "qlora", "--bits", "4", "--target", targets]));
	loss_fell(&qlora);
	let names = tensor_names(&qlora);
	for path in [
		"model.layers.0.mlp.gate_proj",
		"model.layers.1.mlp.experts.7.down_proj",
		"model.layers.1.mlp.shared_experts.up_proj",
	] {
		let name = format!("base_model.model.{path}.lora_B.weight");
		assert!(names.contains(&name), "{name} missing from {names:?}");
	}
	// Per layer: q_proj and kv_b_proj; layer 0's dense MLP; layer 1's 8 experts and shared one.
	assert_eq!(names.len(), 2 * (2 * 2 + 3 + 3 * (EXPERTS + 1)), "{names:?}");

	let broken = |name: &str, edit: &dyn Fn(&mut Value)| {
		let dir = f.root.join(name);
		write_checkpoint("deepseek_v3", &dir, 7);
		let mut cfg = config("deepseek_v3");
		edit(&mut cfg);
		std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
		dir
	};
	let shared_kv = broken("kv-heads", &|c| c["num_key_value_heads"] = 1.into());
	let too_many = broken("per-token", &|c| c["num_experts_per_tok"] = 5.into());
	let rope = broken("rope", &|c| c["rope_scaling"]["type"] = "dynamic".into());
	let no_bias = f.root.join("no-bias");
	write_checkpoint("deepseek_v3", &no_bias, 7);
	let mut weights = tensors("deepseek_v3", 7);
	weights.remove("model.layers.1.mlp.gate.e_score_correction_bias");
	candle_core::safetensors::save(
		&weights.into_iter().collect(),
		no_bias.join("model.safetensors"),
	)
	.unwrap();
	let cases: Vec<(&Path, &[&str], &str)> = vec![
		(&model, &["--target", "q_a_proj"], "q_a_proj match no layer of this model; it has q_proj"),
		(&model, &["--target", "c_attn"], "unknown target module \"c_attn\" for deepseek_v2"),
		(&shared_kv, &[], "num_key_value_heads 1 must equal num_attention_heads 4"),
		(&too_many, &[], "num_experts_per_tok 5 must be between 1 and the 4 experts"),
		(&rope, &[], "rope scaling \"dynamic\" is not supported for deepseek_v3"),
		(&no_bias, &[], "tensor model.layers.1.mlp.gate.e_score_correction_bias is missing"),
	];
	for (i, (dir, extra, expected)) in cases.into_iter().enumerate() {
		let output = f.root.join(format!("refused-{i}"));
		let out = trainer(&args(&f, dir, &output, extra));
		assert!(!out.status.success(), "case {i} succeeded");
		assert!(stderr(&out).contains(expected), "case {i}: {}", stderr(&out));
		assert!(!output.exists(), "case {i} wrote {}", output.display());
	}
}
