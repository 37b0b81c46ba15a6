//! `provenant ask <model> "<prompt>"`: asks the inference server, streams the answer, then
//! shows where it came from.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use crate::context::Context;

/// Ask a model served by `provenant-server` and see the contributions behind the answer.
#[derive(Debug, clap::Parser)]
pub(crate) struct Command {
	/// The model: `base`, a job (`job-7`), or a committed adapter's sha256.
	model: String,
	/// The question.
	prompt: String,
	/// The inference server.
	#[arg(long, env = "PROVENANT_SERVER", default_value = "http://127.0.0.1:8000")]
	server: String,
	/// Most tokens in the answer.
	#[arg(long, default_value_t = 256)]
	max_tokens: usize,
	/// 0 always takes the likeliest token.
	#[arg(long, default_value_t = 0.0)]
	temperature: f64,
	/// Seed of the sampler.
	#[arg(long)]
	seed: Option<u64>,
	/// Continue the prompt as plain text instead of asking in the chat template.
	#[arg(long)]
	raw: bool,
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let server = self.server.trim_end_matches('/');
		let (path, mut body) = if self.raw {
			("completions", json!({ "prompt": self.prompt }))
		} else {
			(
				"chat/completions",
				json!({ "messages": [{ "role": "user", "content": self.prompt }] }),
			)
		};
		body["model"] = json!(self.model);
		body["max_tokens"] = json!(self.max_tokens);
		body["temperature"] = json!(self.temperature);
		body["stream"] = json!(true);
		if let Some(seed) = self.seed {
			body["seed"] = json!(seed);
		}
		let url = format!("{server}/v1/{path}");
		let mut response =
			reqwest::Client::new().post(&url).json(&body).send().await.with_context(|| {
				format!(
					"cannot reach the inference server at {server}: start it with \
					 `provenant-server` (README command (a) does) or name it with --server"
				)
			})?;
		if !response.status().is_success() {
			let status = response.status();
			let text = response.text().await.unwrap_or_default();
			let message = serde_json::from_str::<Value>(&text)
				.ok()
				.and_then(|v| v["error"]["message"].as_str().map(String::from))
				.unwrap_or(text);
			bail!("the server refused the request ({status}): {message}");
		}
		let mut pending = String::new();
		let mut last = Value::Null;
		let mut answer = String::new();
		while let Some(bytes) = response.chunk().await.context("reading the answer")? {
			pending.push_str(&String::from_utf8_lossy(&bytes));
			while let Some(end) = pending.find("\n\n") {
				let event: String = pending.drain(..end + 2).collect();
				let Some(data) = event.trim().strip_prefix("data:").map(str::trim) else {
					continue;
				};
				if data == "[DONE]" {
					continue;
				}
				let chunk: Value = serde_json::from_str(data)
					.with_context(|| format!("the server sent an unreadable event: {data}"))?;
				if let Some(message) = chunk["error"]["message"].as_str() {
					bail!("the server failed while answering: {message}");
				}
				let choice = &chunk["choices"][0];
				let piece = choice["delta"]["content"].as_str().or(choice["text"].as_str());
				if let Some(piece) = piece.filter(|p| !p.is_empty()) {
					answer.push_str(piece);
					if !context.json {
						use std::io::Write as _;
						print!("{piece}");
						let _ = std::io::stdout().flush();
					}
				}
				if !choice["finish_reason"].is_null() {
					last = chunk;
				}
			}
		}
		if last.is_null() {
			return Err(anyhow!("the server closed the stream before the answer ended"));
		}
		if context.json {
			let report = json!({
				"model": self.model,
				"answer": answer,
				"finishReason": last["choices"][0]["finish_reason"],
				"usage": last["usage"],
				"attribution": last["attribution"],
			});
			println!("{}", serde_json::to_string_pretty(&report)?);
			return Ok(());
		}
		println!();
		print_sources(&last["attribution"]);
		Ok(())
	}
}

/// Where the answer came from, in words.
fn print_sources(attribution: &Value) {
	if attribution.is_null() {
		println!("\n(the base model: no fine-tuning data to credit)");
		return;
	}
	let percent = |v: &Value| v["share"].as_f64().unwrap_or(0.0) * 100.0;
	println!(
		"\nfrom {} (adapter {}), trained on contributions shared by {}:",
		attribution["model"].as_str().unwrap_or("?"),
		attribution["adapter"].as_str().map(|s| &s[..s.len().min(16)]).unwrap_or("?"),
		attribution["method"]["method"].as_str().unwrap_or("?"),
	);
	let shares = attribution["shares"].as_array().cloned().unwrap_or_default();
	let listed: Vec<String> =
		shares.iter().map(|s| format!("#{} {:.1}%", s["contribution"], percent(s))).collect();
	println!("  committed shares: {}", listed.join(", "));
	match attribution["spans"].as_array() {
		None => println!("  spans: no span index for this job on the server"),
		Some(spans) if spans.is_empty() => {
			println!("  spans: no part of the answer repeats its training data verbatim")
		},
		Some(spans) => {
			for span in spans {
				let from: Vec<String> = span["contributions"]
					.as_array()
					.map(|c| c.iter().map(|c| format!("#{c}")).collect())
					.unwrap_or_default();
				let from = if from.is_empty() { "common text".into() } else { from.join(", ") };
				println!("  “{}” from {from}", span["text"].as_str().unwrap_or("").trim());
			}
		},
	}
}
