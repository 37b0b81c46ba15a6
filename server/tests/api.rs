//! The OpenAI-compatible API of a real `provenant-server` on SmolLM2-135M (the GGUF from
//! `scripts/fetch-models.sh`), served without a chain: the shapes OpenAI clients read, streamed
//! and whole answers that agree, sampling settings, stop strings, the queue's bound, metrics,
//! and a clear error for each bad request. (Adapters from the chain are tested end to end in
//! `tests/tests/models`.)

use std::{
	io::{BufRead, BufReader},
	path::PathBuf,
	process::{Child, Command, Stdio},
	time::Duration,
};

use serde_json::{json, Value};

fn smollm2() -> PathBuf {
	let path = std::env::var_os("PROVENANT_SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| {
		PathBuf::from(std::env::var("HOME").unwrap())
			.join(".cache/provenant/models/SmolLM2-135M-Instruct.Q4_1.gguf")
	});
	assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh", path.display());
	path
}

/// A running server, killed on drop.
struct Server {
	child: Child,
	url: String,
}

impl Server {
	fn start(extra: &[&str]) -> Self {
		let mut child = Command::new(env!("CARGO_BIN_EXE_provenant-server"))
			.arg("--model")
			.arg(smollm2())
			.args(["--no-chain", "--listen", "127.0.0.1:0"])
			.args(extra)
			.stdout(Stdio::piped())
			.stderr(Stdio::inherit())
			.spawn()
			.expect("provenant-server starts");
		let stdout = child.stdout.take().unwrap();
		let mut lines = BufReader::new(stdout).lines();
		let url = loop {
			let line = lines.next().expect("the server prints its address").unwrap();
			if let Some(rest) = line.split(" on ").nth(1) {
				break rest.split_whitespace().next().unwrap().trim_end_matches("/v1").to_string();
			}
		};
		Self { child, url }
	}

	async fn post(&self, path: &str, body: Value) -> (u16, Value) {
		let response = reqwest::Client::new()
			.post(format!("{}{path}", self.url))
			.json(&body)
			.send()
			.await
			.unwrap();
		let status = response.status().as_u16();
		(status, response.json().await.unwrap())
	}

	/// The events of a streamed answer, `[DONE]` last.
	async fn stream(&self, path: &str, mut body: Value) -> Vec<String> {
		body["stream"] = json!(true);
		let mut response = reqwest::Client::new()
			.post(format!("{}{path}", self.url))
			.json(&body)
			.send()
			.await
			.unwrap();
		assert_eq!(response.status(), 200);
		let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
		assert!(content_type.starts_with("text/event-stream"), "{content_type}");
		let mut text = String::new();
		while let Some(chunk) = response.chunk().await.unwrap() {
			text.push_str(&String::from_utf8_lossy(&chunk));
		}
		text.split("\n\n")
			.filter_map(|event| event.trim().strip_prefix("data:").map(|d| d.trim().to_string()))
			.collect()
	}

	async fn get(&self, path: &str) -> String {
		reqwest::get(format!("{}{path}", self.url)).await.unwrap().text().await.unwrap()
	}
}

impl Drop for Server {
	fn drop(&mut self) {
		let _ = self.child.kill();
		let _ = self.child.wait();
	}
}

/// A question whose answer runs past 12 tokens.
const STORY: &str = "Tell me a long story about a dragon.";

fn chat(question: &str, extra: Value) -> Value {
	let mut body = json!({
		"model": "base",
		"messages": [{ "role": "user", "content": question }],
		"max_tokens": 12,
		"temperature": 0,
	});
	for (key, value) in extra.as_object().unwrap() {
		body[key] = value.clone();
	}
	body
}

fn answer(response: &Value) -> &str {
	response["choices"][0]["message"]["content"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_clients_get_the_answers_and_errors_they_expect() {
	let server = Server::start(&["--max-batch", "4"]);

	let models: Value = serde_json::from_str(&server.get("/v1/models").await).unwrap();
	assert_eq!(models["object"], "list");
	assert_eq!(models["data"][0]["object"], "model");
	let base_name = models["data"][0]["id"].as_str().unwrap().to_string();
	assert!(base_name.contains("SmolLM2"), "{models}");
	// Without an operator, answers are free and clients are told so.
	let payment: Value = serde_json::from_str(&server.get("/v1/payment").await).unwrap();
	assert_eq!(payment, json!({ "paid": false }));

	// A chat answer in OpenAI's shape; the base model credits no one.
	let (status, whole) = server.post("/v1/chat/completions", chat(STORY, json!({}))).await;
	assert_eq!(status, 200, "{whole}");
	assert_eq!(whole["object"], "chat.completion");
	assert_eq!(whole["choices"][0]["message"]["role"], "assistant");
	assert!(!answer(&whole).is_empty(), "{whole}");
	let usage = &whole["usage"];
	assert_eq!(usage["completion_tokens"], 12, "{whole}");
	assert_eq!(whole["choices"][0]["finish_reason"], "length");
	assert_eq!(usage["total_tokens"].as_u64(), Some(usage["prompt_tokens"].as_u64().unwrap() + 12));
	assert_eq!(whole["attribution"], Value::Null);
	// The base's own name serves the same model.
	let (_, named) =
		server.post("/v1/chat/completions", chat(STORY, json!({ "model": base_name }))).await;
	assert_eq!(answer(&named), answer(&whole));

	// Streamed: the role first, the pieces add up to the whole answer, the last chunk has the
	// finish and usage, then [DONE].
	let events = server.stream("/v1/chat/completions", chat(STORY, json!({}))).await;
	assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
	let chunks: Vec<Value> =
		events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
	assert_eq!(chunks[0]["object"], "chat.completion.chunk");
	assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
	let streamed: String =
		chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
	assert_eq!(streamed, answer(&whole));
	let last = chunks.last().unwrap();
	assert_eq!(last["choices"][0]["finish_reason"], "length");
	assert_eq!(last["usage"], whole["usage"]);
	assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));

	// Concurrent requests are batched together and each gets the answer it gets alone.
	let questions = ["What is 2+2?", "Name a colour.", "Say hello.", "What is the sun?"];
	let alone: Vec<String> = {
		let mut out = Vec::new();
		for q in questions {
			out.push(
				answer(&server.post("/v1/chat/completions", chat(q, json!({}))).await.1)
					.to_string(),
			);
		}
		out
	};
	let together = futures::future::join_all(
		questions.iter().map(|q| server.post("/v1/chat/completions", chat(q, json!({})))),
	)
	.await;
	for ((status, response), alone) in together.iter().zip(&alone) {
		assert_eq!(*status, 200, "{response}");
		assert_eq!(answer(response), alone);
	}

	// A stop string ends the answer before it.
	let full = answer(&whole).to_string();
	let middle: Vec<char> = full.chars().collect();
	assert!(middle.len() >= 6, "{full:?}");
	let stop: String = middle[middle.len() / 2..middle.len() / 2 + 3].iter().collect();
	let (_, stopped) = server
		.post("/v1/chat/completions", chat(STORY, json!({ "stop": [stop.clone(), "@@@"] })))
		.await;
	assert_eq!(stopped["choices"][0]["finish_reason"], "stop", "{stopped}");
	assert_eq!(answer(&stopped), &full[..full.find(&stop).unwrap()], "stopped at {stop:?}");

	// Sampling: the same seed gives the same answer; text completions continue the prompt.
	let sampled = |seed: u64| {
		json!({
			"model": "base",
			"prompt": "Once upon a time",
			"max_tokens": 10,
			"temperature": 1.0,
			"top_p": 0.9,
			"seed": seed,
		})
	};
	let (status, first) = server.post("/v1/completions", sampled(7)).await;
	assert_eq!(status, 200, "{first}");
	assert_eq!(first["object"], "text_completion");
	let (_, again) = server.post("/v1/completions", sampled(7)).await;
	assert_eq!(first["choices"][0]["text"], again["choices"][0]["text"]);
	let texts: std::collections::HashSet<String> = {
		let mut set = std::collections::HashSet::new();
		for seed in 1..=4 {
			let (_, r) = server.post("/v1/completions", sampled(seed)).await;
			set.insert(r["choices"][0]["text"].as_str().unwrap().to_string());
		}
		set
	};
	assert!(texts.len() > 1, "different seeds sample different texts: {texts:?}");

	// Bad requests: a clear error in OpenAI's shape, naming the field.
	let refusals = [
		(json!({ "model": "base", "prompt": "x", "temperature": 3 }), 400, "temperature"),
		(json!({ "model": "base", "prompt": "x", "top_p": 0 }), 400, "top_p"),
		(json!({ "model": "base", "prompt": "x", "max_tokens": 0 }), 400, "max_tokens"),
		(json!({ "model": "base", "prompt": "x", "n": 2 }), 400, "n"),
		(json!({ "model": "base", "prompt": "" }), 400, "prompt"),
		(json!({ "model": "base", "prompt": ["a", "b"] }), 400, "prompt"),
		(json!({ "model": "base", "prompt": "x ".repeat(9000) }), 400, "prompt"),
		(json!({ "model": "job-1", "prompt": "x" }), 404, "model"),
		(json!({ "model": "no-such-model", "prompt": "x" }), 404, "model"),
		(json!({ "prompt": "x" }), 400, "body"),
	];
	for (body, status, field) in refusals {
		let (got, error) = server.post("/v1/completions", body.clone()).await;
		assert_eq!(got, status, "{body} → {error}");
		let message = error["error"]["message"].as_str().unwrap();
		assert!(message.contains(field) || error["error"]["param"] == field, "{body} → {error}");
	}
	let (_, error) =
		server.post("/v1/completions", json!({ "model": "job-1", "prompt": "x" })).await;
	assert!(error["error"]["message"].as_str().unwrap().contains("--chain"), "{error}");
	let (status, error) = server
		.post(
			"/v1/chat/completions",
			json!({ "model": "base", "messages": [{ "role": "tool", "content": "x" }] }),
		)
		.await;
	assert_eq!(status, 400);
	assert!(error["error"]["message"].as_str().unwrap().contains("'tool'"), "{error}");

	let metrics = server.get("/metrics").await;
	let value = |name: &str| -> u64 {
		metrics
			.lines()
			.find(|l| l.starts_with(name))
			.and_then(|l| l.rsplit(' ').next())
			.and_then(|v| v.parse().ok())
			.unwrap_or_else(|| panic!("{name} missing from\n{metrics}"))
	};
	assert!(value("provenant_requests_total{outcome=\"ok\"}") >= 16, "{metrics}");
	assert!(value("provenant_requests_total{outcome=\"bad_request\"}") >= 11, "{metrics}");
	assert!(value("provenant_generated_tokens_total") >= 16 * 10, "{metrics}");
	assert_eq!(value("provenant_queue_depth"), 0, "{metrics}");
}

/// Past the queue's bound a request is refused with 429 at once, and the admitted ones finish.
#[tokio::test(flavor = "multi_thread")]
async fn paid_mode_without_a_chain_is_refused_before_anything_loads() {
	let refused = std::process::Command::new(env!("CARGO_BIN_EXE_provenant-server"))
		.arg("--model")
		.arg(smollm2())
		.args(["--no-chain", "--operator", "//Dave"])
		.output()
		.unwrap();
	assert!(!refused.status.success());
	let said = String::from_utf8_lossy(&refused.stderr);
	assert!(said.contains("paid mode (--operator) needs the chain"), "{said}");
}

#[tokio::test]
async fn work_past_the_queue_bound_is_refused_with_429() {
	let server = Server::start(&["--max-batch", "1", "--max-queue", "2"]);
	let long = json!({ "model": "base", "prompt": "Count: one, two,", "max_tokens": 40, "temperature": 0 });
	let requests = (0..5).map(|_| server.post("/v1/completions", long.clone()));
	let answers =
		tokio::time::timeout(Duration::from_secs(300), futures::future::join_all(requests))
			.await
			.expect("every request is answered");
	let busy: Vec<&Value> =
		answers.iter().filter(|(status, _)| *status == 429).map(|(_, body)| body).collect();
	let served = answers.iter().filter(|(status, _)| *status == 200).count();
	assert!(served >= 2, "{answers:?}");
	assert!(!busy.is_empty(), "{answers:?}");
	assert_eq!(busy[0]["error"]["type"], "rate_limit_exceeded");
	assert!(busy[0]["error"]["message"].as_str().unwrap().contains("busy"));
	let metrics = server.get("/metrics").await;
	assert!(
		metrics.contains(&format!("provenant_requests_total{{outcome=\"busy\"}} {}", busy.len())),
		"{metrics}"
	);
}

/// The loss on held-out text, as Studio's run page asks for it: plain English is more
/// predictable than noise, several texts weigh by their tokens, and bad input gets a clear 400.
#[tokio::test(flavor = "multi_thread")]
async fn evaluation_scores_held_out_text_and_refuses_what_it_cannot_score() {
	let server = Server::start(&[]);
	let english = "The sun rises in the east and sets in the west. Every morning the birds sing \
		in the trees, and the children walk to school along the river.";
	let noise = "qx7 zv!! plo# 99k wmb3 ;;ur ttq ghx0 lp%% vvk2 zzq oiw9 xq? mnb rrt7 kkj";
	let score =
		|input: Value| server.post("/v1/evaluate", json!({ "model": "base", "input": input }));
	let (status, plain) = score(json!(english)).await;
	assert_eq!(status, 200, "{plain}");
	assert_eq!(plain["object"], "evaluation");
	assert_eq!(plain["texts"], 1);
	let (loss, tokens) = (plain["loss"].as_f64().unwrap(), plain["tokens"].as_u64().unwrap());
	assert!(tokens > 20, "{plain}");
	assert!((plain["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-6 * loss.exp());
	let (_, garbled) = score(json!(noise)).await;
	let garbled_loss = garbled["loss"].as_f64().unwrap();
	assert!(loss + 1.0 < garbled_loss, "English {loss} nats/token, noise {garbled_loss}");

	let (_, both) = score(json!([english, noise])).await;
	let noise_tokens = garbled["tokens"].as_u64().unwrap();
	assert_eq!(both["tokens"].as_u64().unwrap(), tokens + noise_tokens, "each text on its own");
	let weighted = (loss * tokens as f64 + garbled_loss * noise_tokens as f64)
		/ (tokens + noise_tokens) as f64;
	assert!((both["loss"].as_f64().unwrap() - weighted).abs() < 1e-4, "{both}");
	let (_, again) = score(json!(english)).await;
	assert_eq!(again["loss"], plain["loss"], "the same text scores the same");

	for (body, status, words) in [
		(json!({ "model": "base", "input": "" }), 400, "nothing to score"),
		(json!({ "model": "base", "input": ["", "x"] }), 400, "nothing to score"),
		(json!({ "model": "base", "input": "hello ".repeat(20_000) }), 400, "at most 16384"),
		(json!({ "model": "base" }), 400, "missing field `input`"),
		(json!({ "model": "base", "input": "hi there", "temp": 1 }), 400, "unknown field `temp`"),
		(json!({ "model": "job-4", "input": "hello there" }), 404, "job-4"),
	] {
		let (got, error) = server.post("/v1/evaluate", body.clone()).await;
		assert_eq!(got, status, "{body}: {error}");
		let message = error["error"]["message"].as_str().unwrap();
		assert!(message.contains(words), "{body}: {message}");
	}
}

/// A worker's progress log, as Studio's run page reads it: whole lines only, none before the
/// worker starts, and a plain 404 when the server was not told where workers train.
#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_training_progress_is_read_from_the_workers_log() {
	let work = tempfile::tempdir().unwrap();
	let adapter = work.path().join("job-7").join("adapter");
	std::fs::create_dir_all(&adapter).unwrap();
	let step = |n: u32, loss: f64| {
		json!({ "step": n, "total_steps": 3, "epoch": 0.0, "loss": loss, "lr": 1e-3,
			"grad_norm": 1.0, "tokens_per_s": 100.0, "elapsed_s": n as f64 })
	};
	// The third line is still being written.
	std::fs::write(
		adapter.join("progress.jsonl"),
		format!("{}\n{}\n{{\"step\": 3, \"lo", step(1, 2.5), step(2, 1.25)),
	)
	.unwrap();
	let server = Server::start(&["--adapters", work.path().to_str().unwrap()]);
	let progress: Value = serde_json::from_str(&server.get("/v1/jobs/7/progress").await).unwrap();
	assert_eq!(progress["job"], 7);
	let losses: Vec<f64> =
		progress["steps"].as_array().unwrap().iter().map(|s| s["loss"].as_f64().unwrap()).collect();
	assert_eq!(losses, [2.5, 1.25]);
	let none: Value = serde_json::from_str(&server.get("/v1/jobs/8/progress").await).unwrap();
	assert_eq!(none["steps"], json!([]));
	drop(server);

	let blind = Server::start(&[]);
	let response = reqwest::get(format!("{}/v1/jobs/7/progress", blind.url)).await.unwrap();
	assert_eq!(response.status(), 404);
	let body: Value = response.json().await.unwrap();
	assert!(body["error"]["message"].as_str().unwrap().contains("--adapters"), "{body}");
}

/// Studio's build beside the API: its pages by their own addresses, its files, the node it is
/// told of, and nothing outside the build.
#[tokio::test(flavor = "multi_thread")]
async fn studio_is_served_beside_the_api() {
	let dist = tempfile::tempdir().unwrap();
	std::fs::write(dist.path().join("index.html"), "<html>studio</html>").unwrap();
	std::fs::create_dir(dist.path().join("assets")).unwrap();
	std::fs::write(dist.path().join("assets/app-1a2b.js"), "export {}").unwrap();
	let server = Server::start(&["--studio", dist.path().to_str().unwrap()]);
	for page in ["/", "/datanets/3", "/chat"] {
		assert_eq!(server.get(page).await, "<html>studio</html>", "{page}");
	}
	let asset = reqwest::get(format!("{}/assets/app-1a2b.js", server.url)).await.unwrap();
	assert_eq!(asset.headers()["content-type"], "text/javascript; charset=utf-8");
	assert!(asset.headers()["cache-control"].to_str().unwrap().contains("immutable"));
	let config: Value = serde_json::from_str(&server.get("/config.json").await).unwrap();
	assert_eq!(config, json!({ "chain": null }), "--no-chain tells the app of no node");
	for missing in ["/assets/gone.js", "/favicon.ico"] {
		let response = reqwest::get(format!("{}{missing}", server.url)).await.unwrap();
		assert_eq!(response.status(), 404, "{missing}");
	}
	// The API is untouched by the fallback.
	assert!(server.get("/v1/models").await.contains("\"object\":\"list\""));
}
