//! `provenant ask <model> "<prompt>"`: asks the inference server, streams the answer, then
//! shows where it came from.

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use crate::context::{format_prv, parse_prv, Context};

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
	/// Who pays, when the server is in paid mode: a keystore name or dev URI. Each answer is
	/// paid with a voucher signed by this key, on a channel it opened to the server's operator.
	#[arg(long)]
	from: Option<String>,
	/// The channel that pays [default: the payer's first open channel to the server's
	/// operator].
	#[arg(long)]
	channel: Option<u64>,
	/// Refuse to sign for more than this many PRV for one answer (the server asks for its
	/// price × (prompt tokens + max tokens), and credits back what the answer does not use).
	#[arg(long)]
	max_fee: Option<String>,
}

/// The consumer's side of paid mode: its key, its channel, and the chain vouchers are for.
struct Payer {
	keypair: provenant_client::subxt_signer::sr25519::Keypair,
	channel: u64,
	genesis: [u8; 32],
	operator: String,
	client: provenant_client::Client,
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
		let http = reqwest::Client::new();
		let unreachable = || {
			format!(
				"cannot reach the inference server at {server}: start it with \
				 `provenant-server` (README command (a) does) or name it with --server"
			)
		};
		let payer = self.payer(context, &http, server).await.with_context(unreachable)?;
		if let Some(payer) = &payer {
			body["payment"] = json!({ "channel": payer.channel });
		}
		let url = format!("{server}/v1/{path}");
		let mut response = http.post(&url).json(&body).send().await.with_context(unreachable)?;
		if let Some(payer) = &payer {
			if response.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
				let refusal: Value = response.json().await.context("reading the server's price")?;
				body["payment"] = self.voucher(payer, &refusal["error"])?;
				response = http.post(&url).json(&body).send().await.with_context(unreachable)?;
			}
		}
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
				"payment": last["payment"],
			});
			println!("{}", serde_json::to_string_pretty(&report)?);
			return Ok(());
		}
		println!();
		print_sources(&last["attribution"]);
		if let Some(payer) = &payer {
			print_payment(payer, &last["payment"]).await?;
		}
		Ok(())
	}

	/// The payer, when the server answers paid requests only.
	async fn payer(
		&self,
		context: &Context,
		http: &reqwest::Client,
		server: &str,
	) -> Result<Option<Payer>> {
		let response = http.get(format!("{server}/v1/payment")).send().await?;
		let mode: Value = if response.status().is_success() {
			response.json().await.unwrap_or(Value::Null)
		} else {
			Value::Null
		};
		if mode["paid"] != json!(true) {
			return Ok(None);
		}
		let operator = mode["operator"].as_str().unwrap_or_default().to_string();
		let Some(from) = &self.from else {
			bail!(
				"the server at {server} answers paid requests only (operator {operator}): name \
				 the key that pays with --from, after opening a channel with `provenant pay \
				 open {operator} --deposit <PRV> --from <key>`"
			);
		};
		let keypair = context.signer(from)?;
		let me = keypair.public_key().to_account_id();
		let client = context.connect().await?;
		let channels = super::pay::channels(&client).await?;
		let channel = channels
			.iter()
			.find(|(id, c)| {
				c.consumer == me
					&& c.operator.to_string() == operator
					&& c.closes_at.is_none()
					&& self.channel.is_none_or(|wanted| wanted == *id)
			})
			.map(|(id, _)| *id)
			.ok_or_else(|| {
				anyhow!(
					"{me} has no open channel to the server's operator {operator}{}: open one \
					 with `provenant pay open {operator} --deposit <PRV> --from {from}`",
					self.channel.map(|c| format!(" numbered {c}")).unwrap_or_default()
				)
			})?;
		let genesis = client.genesis_hash().0;
		Ok(Some(Payer { keypair, channel, genesis, operator, client }))
	}

	/// The signed voucher the server's refusal asks for, if its cost is within `--max-fee`.
	fn voucher(&self, payer: &Payer, refusal: &Value) -> Result<Value> {
		let message = refusal["message"].as_str().unwrap_or("the server refused to be paid");
		let required = &refusal["required"];
		let amount = |field: &str| -> Result<u128> {
			required[field]
				.as_str()
				.and_then(|text| text.parse().ok())
				.ok_or_else(|| anyhow!("the server refused the payment: {message}"))
		};
		let (cumulative, cost) = (amount("cumulative")?, amount("cost")?);
		if required["channel"].as_u64() != Some(payer.channel) {
			bail!("the server asked for a voucher on another channel than {}", payer.channel);
		}
		if let Some(max) = &self.max_fee {
			let max = parse_prv(max)?;
			if cost > max {
				bail!(
					"this answer may cost up to {}, more than --max-fee {}",
					format_prv(cost),
					format_prv(max)
				);
			}
		}
		let job = required["job"].as_u64();
		let payload =
			provenant_client::voucher_payload(&payer.genesis, payer.channel, job, cumulative);
		let signature = payer.keypair.sign(&payload);
		Ok(json!({
			"channel": payer.channel,
			"cumulative": cumulative.to_string(),
			"signature": format!("0x{}", hex::encode(signature.0)),
		}))
	}
}

/// What the answer cost and how its payment is split when the operator settles it.
async fn print_payment(payer: &Payer, payment: &Value) -> Result<()> {
	let amount = |field: &str| payment[field].as_str().and_then(|t| t.parse::<u128>().ok());
	let (Some(charged), Some(price)) = (amount("charged"), amount("price")) else {
		println!("\n(the server did not report what the answer cost)");
		return Ok(());
	};
	println!(
		"\npaid {} on channel {} to operator {}: {} tokens at {} each",
		format_prv(charged),
		payer.channel,
		payer.operator,
		payment["tokens"],
		format_prv(price)
	);
	if payment["job"].is_null() {
		println!("  the base model's answers pay the operator alone");
		return Ok(());
	}
	let at = payer.client.at_current_block().await?;
	let operator = at
		.storage()
		.entry(provenant_client::runtime::storage().inference().operator_share())?
		.fetch(())
		.await?
		.decode()?
		.0;
	let split = at
		.storage()
		.entry(provenant_client::runtime::storage().models().current_fee_split())?
		.fetch(())
		.await?
		.decode()?;
	let percent = |ppb: u32| f64::from(ppb) / 1e7;
	let rest = |ppb: u32| percent(ppb) * (1.0 - percent(operator) / 100.0);
	println!(
		"  settled on chain by the published rule: operator {:.1}%, trainer {:.1}%, datanets' \
		 pools {:.1}%, contributors {:.1}% by the committed shares above",
		percent(operator),
		rest(split.trainer.0),
		rest(split.pools.0),
		rest(split.contributors.0),
	);
	Ok(())
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
