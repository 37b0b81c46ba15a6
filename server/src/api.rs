//! The OpenAI-compatible HTTP API: `GET /v1/models`, `POST /v1/completions`,
//! `POST /v1/chat/completions` (streamed as server-sent events with `"stream": true`), plus
//! `GET /metrics` and `GET /health`.
//!
//! Answers carry the standard fields and one more, `attribution`: the adapter's job, its
//! committed contributor shares, and the answer's spans found verbatim in its training set with
//! the contributions they came from. Errors use OpenAI's shape,
//! `{"error": {"message", "type", "param", "code"}}`.

use std::{
	convert::Infallible,
	sync::Arc,
	time::{SystemTime, UNIX_EPOCH},
};

use axum::{
	body::Bytes,
	extract::State,
	http::{header, StatusCode},
	response::{
		sse::{Event as SseEvent, Sse},
		IntoResponse, Response,
	},
	routing::{get, post},
	Json, Router,
};
use futures::{stream, Stream, StreamExt};
use provenant_trainer::{data::Template, generate::Sampling};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{
	adapters::{Loaded, NotServed, Store, Target},
	engine::{Completion, Engine, Event, Refused, Request},
	metrics::{Metrics, Outcome},
	payment::{Charge, NotCovered, Offered, Payments},
};

/// What every handler shares.
pub struct AppState {
	/// The scheduler.
	pub engine: Engine,
	/// The adapters.
	pub store: Store,
	/// The counters.
	pub metrics: Arc<Metrics>,
	/// The base model's chat template.
	pub template: Template,
	/// Tokens that end an answer.
	pub end_tokens: Vec<u32>,
	/// Paid mode's ledger, when requests must be paid for.
	pub payments: Option<Arc<Payments>>,
	/// One evaluation at a time: it runs beside the scheduler, not in its batches.
	pub evaluating: tokio::sync::Semaphore,
}

/// The shortest span of an answer credited to a training document, in tokens.
pub const MIN_SPAN: usize = 8;
/// A span found in more documents than this is common text and credits no one.
pub const MAX_SOURCES: usize = 8;
/// Committed shares listed with each answer.
const LISTED_SHARES: usize = 10;
/// `max_tokens` of a chat completion that names none.
const CHAT_MAX_TOKENS: usize = 512;
/// `max_tokens` of a completion that names none (OpenAI's default).
const COMPLETION_MAX_TOKENS: usize = 16;
/// Most tokens one evaluation scores.
pub const EVALUATE_MAX_TOKENS: usize = 16_384;
/// Tokens an evaluation reads at a time, each window from an empty cache.
const EVALUATE_WINDOW: usize = 512;

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
	Router::new()
		.route("/v1/models", get(models))
		.route("/v1/completions", post(completions))
		.route("/v1/chat/completions", post(chat_completions))
		.route("/v1/payment", get(payment))
		.route("/v1/jobs/{job}/progress", get(progress))
		.route("/v1/evaluate", post(evaluate))
		.route("/metrics", get(metrics))
		.route("/health", get(|| async { "ok" }))
		.with_state(state)
}

/// An error as OpenAI reports it.
pub struct ApiError {
	status: StatusCode,
	message: String,
	kind: &'static str,
	param: Option<&'static str>,
	/// More for the client to act on, beside the standard fields.
	details: Option<(&'static str, Value)>,
}

impl ApiError {
	fn invalid(param: &'static str, message: impl Into<String>) -> Self {
		Self {
			status: StatusCode::BAD_REQUEST,
			message: message.into(),
			kind: "invalid_request_error",
			param: Some(param),
			details: None,
		}
	}
}

impl From<NotServed> for ApiError {
	fn from(error: NotServed) -> Self {
		let (status, kind) = match &error {
			NotServed::Unknown(_) => (StatusCode::NOT_FOUND, "model_not_found"),
			NotServed::Refused(_) => (StatusCode::FORBIDDEN, "adapter_refused"),
			NotServed::Failed(_) => (StatusCode::BAD_GATEWAY, "chain_error"),
		};
		Self { status, message: error.to_string(), kind, param: Some("model"), details: None }
	}
}

impl From<NotCovered> for ApiError {
	fn from(error: NotCovered) -> Self {
		Self {
			status: StatusCode::PAYMENT_REQUIRED,
			message: error.message,
			kind: "payment_required",
			param: Some("payment"),
			details: error.required.map(|required| ("required", json!(required))),
		}
	}
}

impl IntoResponse for ApiError {
	fn into_response(self) -> Response {
		let mut body = json!({
			"error": {
				"message": self.message,
				"type": self.kind,
				"param": self.param,
				"code": self.kind,
			}
		});
		if let Some((name, value)) = self.details {
			body["error"][name] = value;
		}
		(self.status, Json(body)).into_response()
	}
}

fn now() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

async fn models(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
	let entry =
		|id: String| json!({ "id": id, "object": "model", "created": 0, "owned_by": "provenant" });
	let mut data = vec![entry(state.store.base_name.clone())];
	let jobs = state.store.committed_jobs().await.map_err(|e| ApiError {
		status: StatusCode::BAD_GATEWAY,
		message: format!("the chain did not answer: {e}"),
		kind: "chain_error",
		param: None,
		details: None,
	})?;
	data.extend(jobs.into_iter().map(|job| entry(format!("job-{job}"))));
	Ok(Json(json!({ "object": "list", "data": data })))
}

/// Whether answers must be paid for, and to whom: `{"paid": false}`, or the operator and the
/// genesis hash vouchers are signed over (each channel keeps its own price, on chain).
async fn payment(State(state): State<Arc<AppState>>) -> Json<Value> {
	Json(match &state.payments {
		None => json!({ "paid": false }),
		Some(payments) => json!({
			"paid": true,
			"operator": payments.operator().to_string(),
			"genesis": format!("0x{}", hex::encode(payments.genesis())),
		}),
	})
}

/// A job's training progress as its worker logs it (`job-<id>/adapter/progress.jsonl` under
/// `--adapters`), for Studio's live loss curve: `{"job", "steps": [...]}`, one entry per
/// optimiser step, empty until the worker starts. Not part of OpenAI's API.
async fn progress(
	State(state): State<Arc<AppState>>,
	axum::extract::Path(job): axum::extract::Path<u64>,
) -> Result<Json<Value>, ApiError> {
	let Some(dir) = state.store.job_dir(job) else {
		return Err(ApiError {
			status: StatusCode::NOT_FOUND,
			message: "this server was started without --adapters, so it sees no worker's progress"
				.into(),
			kind: "not_found_error",
			param: None,
			details: None,
		});
	};
	let log = dir.join("adapter").join("progress.jsonl");
	let text = match std::fs::read_to_string(&log) {
		Ok(text) => text,
		Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
		Err(e) => return Err(server_error(format!("reading {}: {e}", log.display()))),
	};
	// A line still being written is skipped until it is whole.
	let steps: Vec<Value> =
		text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
	Ok(Json(json!({ "job": job, "steps": steps })))
}

/// What `POST /v1/evaluate` takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluateBody {
	/// The base, or an adapter, named as for completions.
	model: String,
	/// The held-out text, or several texts scored each on its own.
	input: OneOrMany,
}

/// The model's loss on held-out text: `{"object": "evaluation", "model", "texts", "tokens",
/// "loss", "perplexity"}`, the loss in nats per predicted token. Texts are read in windows of
/// [`EVALUATE_WINDOW`] tokens. Studio's run page compares a fine-tune with its base by it. Not
/// part of OpenAI's API, and not offered in paid mode (it is not an answer to pay for).
async fn evaluate(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
	let result = async {
		if state.payments.is_some() {
			return Err(ApiError {
				status: StatusCode::FORBIDDEN,
				message:
					"this server is in paid mode: it answers paid requests, and does not evaluate"
						.into(),
				kind: "not_offered",
				param: None,
				details: None,
			});
		}
		let body: EvaluateBody = serde_json::from_slice(&body).map_err(invalid_body)?;
		let texts = body.input.into_vec();
		let mut inputs = Vec::with_capacity(texts.len());
		for (i, text) in texts.iter().enumerate() {
			let encoding = state.engine.tokenizer.encode(text.as_str(), true).map_err(|e| {
				ApiError::invalid("input", format!("text {i} cannot be tokenised: {e}"))
			})?;
			inputs.push(encoding.get_ids().to_vec());
		}
		let total: usize = inputs.iter().map(Vec::len).sum();
		if inputs.iter().all(|ids| ids.len() < 2) {
			return Err(ApiError::invalid(
				"input",
				"nothing to score: a text needs at least two tokens, one to predict the next",
			));
		}
		if total > EVALUATE_MAX_TOKENS {
			return Err(ApiError::invalid(
				"input",
				format!("the input has {total} tokens; one evaluation scores at most {EVALUATE_MAX_TOKENS}"),
			));
		}
		let target = state.store.resolve(&body.model).await?;
		let Ok(_permit) = state.evaluating.try_acquire() else {
			return Err(ApiError {
				status: StatusCode::TOO_MANY_REQUESTS,
				message: "another evaluation is running; try again when it ends".into(),
				kind: "rate_limit_exceeded",
				param: None,
				details: None,
			});
		};
		let model = state.store.base().clone();
		let adapter = match &target {
			Target::Base => None,
			Target::Adapter(loaded) => Some(loaded.clone()),
		};
		let window = EVALUATE_WINDOW.min(model.cfg.max_positions);
		let scored = tokio::task::spawn_blocking(move || {
			let adapter = adapter.as_ref().map(|loaded| &loaded.adapter);
			inputs.iter().try_fold((0.0, 0), |(sum, count), ids| {
				let (s, n) = model.token_loss(ids, adapter, window)?;
				Ok::<_, provenant_trainer::Error>((sum + s, count + n))
			})
		})
		.await;
		let (sum, predicted) = match scored {
			Ok(Ok(scored)) => scored,
			Ok(Err(e)) => return Err(server_error(format!("evaluating: {e}"))),
			Err(e) => return Err(server_error(format!("the evaluation stopped: {e}"))),
		};
		let loss = sum / predicted as f64;
		state.metrics.count(Outcome::Ok);
		Ok(Json(json!({
			"object": "evaluation",
			"model": match &target {
				Target::Base => state.store.base_name.clone(),
				Target::Adapter(loaded) => loaded.name.clone(),
			},
			"texts": texts.len(),
			"tokens": predicted,
			"loss": loss,
			"perplexity": loss.exp(),
		}))
		.into_response())
	}
	.await;
	finish(&state, result)
}

fn server_error(message: String) -> ApiError {
	ApiError {
		status: StatusCode::INTERNAL_SERVER_ERROR,
		message,
		kind: "server_error",
		param: None,
		details: None,
	}
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
	([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
	One(String),
	Many(Vec<String>),
}

impl OneOrMany {
	fn into_vec(self) -> Vec<String> {
		match self {
			OneOrMany::One(s) => vec![s],
			OneOrMany::Many(v) => v,
		}
	}
}

/// The sampling fields both endpoints share.
#[derive(Deserialize)]
struct Common {
	model: String,
	max_tokens: Option<usize>,
	max_completion_tokens: Option<usize>,
	temperature: Option<f64>,
	top_p: Option<f64>,
	stop: Option<OneOrMany>,
	seed: Option<u64>,
	#[serde(default)]
	stream: bool,
	n: Option<usize>,
	/// In paid mode, the voucher that pays for the request.
	payment: Option<Value>,
}

#[derive(Deserialize)]
struct CompletionBody {
	prompt: OneOrMany,
}

#[derive(Deserialize)]
struct Message {
	role: String,
	content: String,
}

#[derive(Deserialize)]
struct ChatBody {
	messages: Vec<Message>,
}

/// The shared fields and the endpoint's own, read separately from one JSON value (serde's
/// `flatten` misreads numbers where a dependency enables serde_json's arbitrary precision).
fn invalid_body(e: serde_json::Error) -> ApiError {
	ApiError {
		status: StatusCode::BAD_REQUEST,
		message: format!("the request body is not a valid request: {e}"),
		kind: "invalid_request_error",
		param: None,
		details: None,
	}
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<(Common, T), ApiError> {
	let value: Value = serde_json::from_slice(body).map_err(invalid_body)?;
	let common = serde_json::from_value(value.clone()).map_err(invalid_body)?;
	Ok((common, serde_json::from_value(value).map_err(invalid_body)?))
}

/// Which endpoint, for the response's shape.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
	Text,
	Chat,
}

async fn completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
	let result = async {
		let (common, body): (_, CompletionBody) = parse(&body)?;
		let prompts = body.prompt.into_vec();
		let [prompt] = prompts.as_slice() else {
			return Err(ApiError::invalid("prompt", "give one prompt (a string) per request"));
		};
		if prompt.is_empty() {
			return Err(ApiError::invalid("prompt", "the prompt is empty"));
		}
		serve(&state, common, prompt.clone(), Kind::Text).await
	}
	.await;
	finish(&state, result)
}

async fn chat_completions(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
	let result = async {
		let (common, body): (_, ChatBody) = parse(&body)?;
		let turns: Vec<(&str, &str)> =
			body.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
		let text =
			state.template.conversation(&turns).map_err(|e| ApiError::invalid("messages", e))?;
		serve(&state, common, text, Kind::Chat).await
	}
	.await;
	finish(&state, result)
}

fn finish(state: &AppState, result: Result<Response, ApiError>) -> Response {
	match result {
		Ok(response) => response,
		Err(error) => {
			state.metrics.count(match error.status {
				StatusCode::TOO_MANY_REQUESTS => Outcome::Busy,
				s if s.is_client_error() => Outcome::Bad,
				_ => Outcome::Failed,
			});
			error.into_response()
		},
	}
}

/// Checks the settings, resolves the model, queues the request and answers, whole or streamed.
async fn serve(
	state: &Arc<AppState>,
	common: Common,
	prompt: String,
	kind: Kind,
) -> Result<Response, ApiError> {
	if common.n.is_some_and(|n| n != 1) {
		return Err(ApiError::invalid("n", "this server gives one choice per request (n = 1)"));
	}
	let sampling = Sampling {
		temperature: common.temperature.unwrap_or(1.0),
		top_p: common.top_p.unwrap_or(1.0),
		seed: common.seed.unwrap_or_else(|| {
			SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
		}),
	};
	if !(0.0..=2.0).contains(&sampling.temperature) {
		return Err(ApiError::invalid(
			"temperature",
			format!("temperature must be between 0 and 2, got {}", sampling.temperature),
		));
	}
	sampling.validate().map_err(|e| ApiError::invalid("top_p", e.to_string()))?;
	let max_tokens = common
		.max_completion_tokens
		.or(common.max_tokens)
		.unwrap_or(if kind == Kind::Chat { CHAT_MAX_TOKENS } else { COMPLETION_MAX_TOKENS });
	if max_tokens == 0 {
		return Err(ApiError::invalid("max_tokens", "max_tokens must be at least 1"));
	}
	let stop = common.stop.map(OneOrMany::into_vec).unwrap_or_default();
	if stop.len() > 4 {
		return Err(ApiError::invalid("stop", "give at most 4 stop strings"));
	}
	let ids = state
		.engine
		.tokenizer
		.encode(prompt.as_str(), true)
		.map_err(|e| ApiError::invalid("prompt", format!("cannot tokenise the prompt: {e}")))?
		.get_ids()
		.to_vec();
	let context = state.engine.max_positions;
	if ids.is_empty() || ids.len() >= context {
		return Err(ApiError::invalid(
			"prompt",
			format!(
				"the prompt is {} tokens; the model reads at most {} including its answer",
				ids.len(),
				context
			),
		));
	}
	let target = state.store.resolve(&common.model).await?;
	let adapter = match &target {
		Target::Base => None,
		Target::Adapter(loaded) => Some(loaded.clone()),
	};
	let prompt_tokens = ids.len();
	let charge = match &state.payments {
		None => None,
		Some(payments) => {
			let offered = common
				.payment
				.as_ref()
				.map(Offered::parse)
				.transpose()
				.map_err(|e| ApiError::invalid("payment", e))?;
			let job = adapter.as_ref().map(|loaded| loaded.job);
			let tokens = (prompt_tokens + max_tokens) as u128;
			Some((payments.clone(), payments.charge(offered.as_ref(), job, tokens).await?))
		},
	};
	let (events, receiver) = mpsc::unbounded_channel();
	let answer = Answer {
		id: format!("{}-{:x}", if kind == Kind::Chat { "chatcmpl" } else { "cmpl" }, rand_id()),
		model: common.model.clone(),
		created: now(),
		kind,
		adapter: adapter.clone(),
		prompt_tokens,
		charge,
	};
	state
		.engine
		.submit(Request {
			prompt: ids,
			adapter,
			max_tokens,
			sampling,
			end_tokens: state.end_tokens.clone(),
			stop,
			events,
		})
		.map_err(|refused| {
			// Nothing was answered: whatever was held for it goes back.
			answer.pay(0);
			match refused {
				Refused::Busy { limit } => ApiError {
					status: StatusCode::TOO_MANY_REQUESTS,
					message: format!(
						"the server is busy: {limit} requests are already queued or running; try \
						 again shortly"
					),
					kind: "rate_limit_exceeded",
					param: None,
					details: None,
				},
				Refused::Stopped => ApiError {
					status: StatusCode::SERVICE_UNAVAILABLE,
					message: "the scheduler has stopped".into(),
					kind: "server_error",
					param: None,
					details: None,
				},
			}
		})?;
	if common.stream {
		return Ok(stream_answer(state.clone(), answer, receiver).into_response());
	}
	let completion = match collect(receiver).await {
		Ok(completion) => completion,
		Err(error) => {
			answer.pay(0);
			return Err(error);
		},
	};
	let body = answer.whole(state, &completion);
	state.metrics.count(Outcome::Ok);
	Ok(Json(body).into_response())
}

fn rand_id() -> u64 {
	let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
	(nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Waits for the whole answer.
async fn collect(mut receiver: mpsc::UnboundedReceiver<Event>) -> Result<Completion, ApiError> {
	while let Some(event) = receiver.recv().await {
		match event {
			Event::Text(_) => {},
			Event::Done(completion) => return Ok(completion),
			Event::Failed(message) => return Err(failed(message)),
		}
	}
	Err(failed("the scheduler dropped the request".into()))
}

fn failed(message: String) -> ApiError {
	server_error(format!("generating the answer failed: {message}"))
}

/// What every response of one request shares.
struct Answer {
	id: String,
	model: String,
	created: u64,
	kind: Kind,
	adapter: Option<Arc<Loaded>>,
	prompt_tokens: usize,
	/// In paid mode, what was held for the request.
	charge: Option<(Arc<Payments>, Charge)>,
}

impl Answer {
	/// Charges the request for the `used` tokens only, giving back what was held for the
	/// rest; returns the `payment` field of the answer (`null` in free mode).
	fn pay(&self, used: usize) -> Value {
		let Some((payments, charge)) = &self.charge else { return Value::Null };
		payments.refund(charge, used as u128);
		json!({
			"channel": charge.channel,
			"job": charge.job,
			"price": charge.price.to_string(),
			"tokens": used,
			"charged": charge.price.saturating_mul(used as u128).to_string(),
		})
	}

	fn object(&self, chunk: bool) -> &'static str {
		match (self.kind, chunk) {
			(Kind::Chat, false) => "chat.completion",
			(Kind::Chat, true) => "chat.completion.chunk",
			(Kind::Text, _) => "text_completion",
		}
	}

	fn usage(&self, completion: &Completion) -> Value {
		json!({
			"prompt_tokens": self.prompt_tokens,
			"completion_tokens": completion.ids.len(),
			"total_tokens": self.prompt_tokens + completion.ids.len(),
		})
	}

	/// The non-streamed response.
	fn whole(&self, state: &AppState, completion: &Completion) -> Value {
		let choice = match self.kind {
			Kind::Chat => json!({
				"index": 0,
				"message": { "role": "assistant", "content": completion.text },
				"finish_reason": completion.finish.as_str(),
			}),
			Kind::Text => json!({
				"index": 0,
				"text": completion.text,
				"logprobs": null,
				"finish_reason": completion.finish.as_str(),
			}),
		};
		json!({
			"id": self.id,
			"object": self.object(false),
			"created": self.created,
			"model": self.model,
			"choices": [choice],
			"usage": self.usage(completion),
			"attribution": attribution(state, self.adapter.as_deref(), &completion.ids),
			"payment": self.pay(self.prompt_tokens + completion.ids.len()),
		})
	}

	/// One streamed chunk with `text` (and, on the last, its finish).
	fn chunk(&self, text: Option<&str>, done: Option<(&AppState, &Completion)>) -> Value {
		let finish = done.map(|(_, c)| c.finish.as_str());
		let choice = match self.kind {
			Kind::Chat => {
				let delta = match text {
					Some(text) => json!({ "content": text }),
					None if done.is_none() => json!({ "role": "assistant", "content": "" }),
					None => json!({}),
				};
				json!({ "index": 0, "delta": delta, "finish_reason": finish })
			},
			Kind::Text => json!({
				"index": 0,
				"text": text.unwrap_or(""),
				"logprobs": null,
				"finish_reason": finish,
			}),
		};
		let mut chunk = json!({
			"id": self.id,
			"object": self.object(true),
			"created": self.created,
			"model": self.model,
			"choices": [choice],
		});
		if let Some((state, completion)) = done {
			chunk["usage"] = self.usage(completion);
			chunk["attribution"] = attribution(state, self.adapter.as_deref(), &completion.ids);
			chunk["payment"] = self.pay(self.prompt_tokens + completion.ids.len());
		}
		chunk
	}
}

/// The answer as server-sent events: a chunk per piece of text, a last chunk with the finish,
/// usage and attribution, then `[DONE]`.
fn stream_answer(
	state: Arc<AppState>,
	answer: Answer,
	receiver: mpsc::UnboundedReceiver<Event>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
	let answer = Arc::new(answer);
	let opening = (answer.kind == Kind::Chat).then(|| answer.chunk(None, None));
	let events = stream::unfold((receiver, false), move |(mut receiver, ended)| {
		let (answer, state) = (answer.clone(), state.clone());
		async move {
			if ended {
				return None;
			}
			let (data, ended) = match receiver.recv().await {
				Some(Event::Text(text)) => (answer.chunk(Some(&text), None).to_string(), false),
				Some(Event::Done(completion)) => {
					state.metrics.count(Outcome::Ok);
					(answer.chunk(None, Some((&state, &completion))).to_string(), true)
				},
				Some(Event::Failed(message)) => {
					state.metrics.count(Outcome::Failed);
					answer.pay(0);
					let error = json!({ "error": { "message": message, "type": "server_error" } });
					(error.to_string(), true)
				},
				None => return None,
			};
			Some((vec![data], (receiver, ended)))
		}
	})
	.flat_map(stream::iter);
	let opening = stream::iter(opening.map(|o| o.to_string()));
	let done = stream::iter(["[DONE]".to_string()]);
	Sse::new(opening.chain(events).chain(done).map(|data| Ok(SseEvent::default().data(data))))
}

/// The `attribution` field: `null` for the base model; for an adapter, its job, committed
/// shares and, when its training set's span index is at hand, the answer's spans.
fn attribution(state: &AppState, adapter: Option<&Loaded>, ids: &[u32]) -> Value {
	let Some(loaded) = adapter else { return Value::Null };
	let shares: Vec<Value> = loaded
		.shares
		.largest(LISTED_SHARES)
		.into_iter()
		.map(|(contribution, share)| json!({ "contribution": contribution, "share": share }))
		.collect();
	let mut out = json!({
		"model": loaded.name,
		"job": loaded.job,
		"adapter": hex::encode(loaded.sha256),
		"method": serde_json::to_value(loaded.shares.method).unwrap_or(Value::Null),
		"shares": shares,
		"spans": null,
	});
	let Some(index) = &loaded.spans else { return out };
	let Ok(found) = index.attribute(ids, MIN_SPAN, MAX_SOURCES) else { return out };
	let decode = |ids: &[u32]| state.engine.tokenizer.decode(ids, true).unwrap_or_default();
	out["spans"] = found
		.spans
		.iter()
		.map(|span| {
			json!({
				"text": decode(&ids[span.start..span.end]),
				"tokens": [span.start, span.end],
				"occurrences": span.occurrences,
				"contributions": span.sources,
			})
		})
		.collect();
	out["answerShares"] = found
		.shares
		.iter()
		.map(|(contribution, share)| json!({ "contribution": contribution, "share": share }))
		.collect();
	out["covered"] = json!(found.covered);
	out
}
