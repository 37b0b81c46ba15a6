//! The scheduler: one thread that owns the base model and runs every active request in each
//! step (continuous batching), with a key-value cache per request.
//!
//! Each step takes every active request: the next chunk of a prompt not yet read, or the one
//! token sampled last. Requests are ordered by adapter, so each adapter's rows are consecutive
//! and share its two small products ([`provenant_trainer::model::Sequence`]). A request joins
//! at the next step after it arrives and leaves as soon as it finishes, so short answers are
//! not held back by long ones. Work waiting is bounded: past `max_queue` requests, admission
//! is refused (HTTP 429) rather than memory running out.

use std::{
	sync::{
		atomic::{AtomicUsize, Ordering},
		mpsc, Arc,
	},
	time::Instant,
};

use provenant_trainer::{
	generate::{pick, Sampling},
	model::{KvCache, Model, Sequence},
	rng::Rng,
};
use tokenizers::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use crate::{adapters::Loaded, metrics::Metrics};

/// Why a request stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
	/// An end token or a stop string.
	Stop,
	/// `max_tokens`, or the model's context, was reached.
	Length,
}

impl Finish {
	/// OpenAI's name for it.
	pub fn as_str(self) -> &'static str {
		match self {
			Finish::Stop => "stop",
			Finish::Length => "length",
		}
	}
}

/// What a request's stream receives.
#[derive(Debug)]
pub enum Event {
	/// More of the answer's text.
	Text(String),
	/// The answer is complete.
	Done(Completion),
	/// The request failed; nothing more follows.
	Failed(String),
}

/// A finished answer.
#[derive(Clone, Debug)]
pub struct Completion {
	/// The whole text, stop string excluded.
	pub text: String,
	/// Its tokens.
	pub ids: Vec<u32>,
	/// Why it ended.
	pub finish: Finish,
	/// Tokens of the prompt.
	pub prompt_tokens: usize,
	/// Seconds from admission to the first token.
	pub first_token_seconds: f64,
}

/// A request for the scheduler.
pub struct Request {
	/// The prompt's tokens, template applied.
	pub prompt: Vec<u32>,
	/// The adapter to serve it with; `None` for the base.
	pub adapter: Option<Arc<Loaded>>,
	/// Most tokens to generate.
	pub max_tokens: usize,
	/// How tokens are picked.
	pub sampling: Sampling,
	/// Tokens that end the answer (the template's end token, the model's end of sequence).
	pub end_tokens: Vec<u32>,
	/// Texts that end the answer; the answer stops before them.
	pub stop: Vec<String>,
	/// Where its events go.
	pub events: UnboundedSender<Event>,
}

/// Limits of the scheduler.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
	/// Requests run in one step.
	pub max_batch: usize,
	/// Requests admitted but not finished (running and waiting) before new ones are refused.
	pub max_queue: usize,
	/// Prompt tokens one request reads in a step, so a long prompt does not stall the others.
	pub prefill_chunk: usize,
}

/// The handle the HTTP side holds.
#[derive(Clone)]
pub struct Engine {
	sender: mpsc::Sender<Request>,
	pending: Arc<AtomicUsize>,
	limits: Limits,
	/// The tokenizer, for templates and counting.
	pub tokenizer: Arc<Tokenizer>,
	/// The model's context length.
	pub max_positions: usize,
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refused {
	/// `max_queue` requests are already waiting or running.
	Busy {
		/// The limit.
		limit: usize,
	},
	/// The scheduler thread has stopped.
	Stopped,
}

impl Engine {
	/// Starts the scheduler thread over `model`.
	pub fn start(
		model: Arc<Model>,
		tokenizer: Arc<Tokenizer>,
		limits: Limits,
		metrics: Arc<Metrics>,
	) -> Self {
		let (sender, receiver) = mpsc::channel();
		let pending = Arc::new(AtomicUsize::new(0));
		let max_positions = model.cfg.max_positions;
		let scheduler = Scheduler {
			model,
			tokenizer: tokenizer.clone(),
			limits,
			receiver,
			pending: pending.clone(),
			metrics,
			active: Vec::new(),
		};
		// The scheduler runs on a worker of a pool of its own, so the products of a step are
		// split between it and the other workers directly. Called from outside a pool, each of
		// a token's 121 products would hand its work to the pool and sleep until woken: two
		// context switches each, a quarter of a decode step in the serving benchmark's profile.
		let pool = rayon::ThreadPoolBuilder::new()
			.num_threads(rayon::current_num_threads())
			.thread_name(|i| format!("scheduler-{i}"))
			.build()
			.expect("the scheduler's threads start");
		std::thread::Builder::new()
			.name("scheduler".into())
			.spawn(move || pool.install(|| scheduler.run()))
			.expect("the scheduler thread starts");
		Self { sender, pending, limits, tokenizer, max_positions }
	}

	/// Queues `request`, or refuses it when the queue is full.
	pub fn submit(&self, request: Request) -> Result<(), Refused> {
		let limit = self.limits.max_queue;
		let admitted = self
			.pending
			.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1));
		if admitted.is_err() {
			return Err(Refused::Busy { limit });
		}
		self.sender.send(request).map_err(|_| {
			self.pending.fetch_sub(1, Ordering::SeqCst);
			Refused::Stopped
		})
	}
}

/// A request being served.
struct Active {
	request: Request,
	cache: KvCache,
	/// Prompt tokens read so far.
	read: usize,
	generated: Vec<u32>,
	/// Bytes of the decoded answer already sent.
	sent: usize,
	rng: Rng,
	admitted: Instant,
	first_token: Option<f64>,
}

impl Active {
	/// The tokens this step reads: the prompt's next chunk, or the last token sampled.
	fn next_tokens(&self, chunk: usize) -> &[u32] {
		let prompt = &self.request.prompt;
		if self.read < prompt.len() {
			&prompt[self.read..prompt.len().min(self.read + chunk)]
		} else {
			std::slice::from_ref(self.generated.last().expect("a read prompt has sampled"))
		}
	}
}

struct Scheduler {
	model: Arc<Model>,
	tokenizer: Arc<Tokenizer>,
	limits: Limits,
	receiver: mpsc::Receiver<Request>,
	pending: Arc<AtomicUsize>,
	metrics: Arc<Metrics>,
	active: Vec<Active>,
}

impl Scheduler {
	fn run(mut self) {
		loop {
			if self.active.is_empty() {
				match self.receiver.recv() {
					Ok(request) => self.admit(request),
					Err(_) => return,
				}
			}
			while self.active.len() < self.limits.max_batch {
				match self.receiver.try_recv() {
					Ok(request) => self.admit(request),
					Err(_) => break,
				}
			}
			self.publish_gauges();
			self.step();
			self.publish_gauges();
		}
	}

	fn publish_gauges(&self) {
		self.metrics.running.store(self.active.len(), Ordering::Relaxed);
		let waiting = self.pending.load(Ordering::SeqCst).saturating_sub(self.active.len());
		self.metrics.queued.store(waiting, Ordering::Relaxed);
	}

	fn admit(&mut self, request: Request) {
		let rng = Rng::new(request.sampling.seed);
		self.active.push(Active {
			request,
			cache: KvCache::default(),
			read: 0,
			generated: Vec::new(),
			sent: 0,
			rng,
			admitted: Instant::now(),
			first_token: None,
		});
	}

	/// One forward pass over every active request, then each samples, streams and perhaps
	/// finishes.
	fn step(&mut self) {
		// Consecutive rows per adapter; the base's requests first.
		self.active.sort_by_key(|a| a.request.adapter.as_ref().map(|l| Arc::as_ptr(l) as usize));
		let chunk = self.limits.prefill_chunk.max(1);
		let tokens: Vec<Vec<u32>> =
			self.active.iter().map(|a| a.next_tokens(chunk).to_vec()).collect();
		let mut batch: Vec<Sequence> = self
			.active
			.iter_mut()
			.zip(&tokens)
			.map(|(a, tokens)| Sequence {
				tokens,
				cache: &mut a.cache,
				adapter: a.request.adapter.as_deref().map(|l| &l.adapter),
			})
			.collect();
		let result = self.model.forward_batch(&mut batch);
		drop(batch);
		let logits = match result.and_then(|l| Ok(l.to_vec2::<f32>()?)) {
			Ok(logits) => logits,
			Err(error) => {
				self.pending.fetch_sub(self.active.len(), Ordering::SeqCst);
				for active in self.active.drain(..) {
					let _ = active.request.events.send(Event::Failed(error.to_string()));
				}
				return;
			},
		};
		let mut running = std::mem::take(&mut self.active);
		for (mut active, logits) in running.drain(..).zip(logits) {
			match self.advance(&mut active, &logits) {
				None => self.active.push(active),
				Some(last) => {
					self.pending.fetch_sub(1, Ordering::SeqCst);
					if let Some(event) = last {
						let _ = active.request.events.send(event);
					}
				},
			}
		}
	}

	/// Reads the step's logits into `active`; `Some` when it has finished (with its last
	/// event, or `None` when its client has gone).
	fn advance(&self, active: &mut Active, logits: &[f32]) -> Option<Option<Event>> {
		let prompt_len = active.request.prompt.len();
		if active.read < prompt_len {
			let read = (prompt_len - active.read).min(self.limits.prefill_chunk.max(1));
			active.read += read;
			self.metrics.prompt_tokens.fetch_add(read, Ordering::Relaxed);
			if active.read < prompt_len {
				return None;
			}
		}
		if active.request.events.is_closed() {
			return Some(None);
		}
		let next = pick(logits, &active.request.sampling, &mut active.rng);
		if active.first_token.is_none() {
			active.first_token = Some(active.admitted.elapsed().as_secs_f64());
		}
		let mut finish = None;
		if active.request.end_tokens.contains(&next) {
			finish = Some(Finish::Stop);
		} else {
			active.generated.push(next);
			self.metrics.generated_tokens.fetch_add(1, Ordering::Relaxed);
		}
		let decoded = match self.tokenizer.decode(&active.generated, true) {
			Ok(text) => text,
			Err(error) => {
				return Some(Some(Event::Failed(format!("decoding the answer: {error}"))))
			},
		};
		let mut text = decoded.as_str();
		if let Some(cut) = stop_at(text, &active.request.stop) {
			text = &text[..cut];
			finish = Some(Finish::Stop);
		}
		let out_of_room = active.cache.len() + 1 >= self.model.cfg.max_positions;
		if finish.is_none() && (active.generated.len() >= active.request.max_tokens || out_of_room)
		{
			finish = Some(Finish::Length);
		}
		// Text that could still become a stop string, or a character still being spelt over
		// several tokens, waits for the next token.
		let ready =
			if finish.is_some() { text.len() } else { held_back(text, &active.request.stop) };
		if ready > active.sent {
			let piece = text[active.sent..ready].to_string();
			active.sent = ready;
			if active.request.events.send(Event::Text(piece)).is_err() {
				return Some(None);
			}
		}
		let finish = finish?;
		Some(Some(Event::Done(Completion {
			text: text.to_string(),
			ids: active.generated.clone(),
			finish,
			prompt_tokens: prompt_len,
			first_token_seconds: active.first_token.unwrap_or_default(),
		})))
	}
}

/// Where the first stop string in `text` begins.
fn stop_at(text: &str, stop: &[String]) -> Option<usize> {
	stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
}

/// How much of `text` can be sent: all but a tail that begins a stop string or ends in an
/// incomplete character.
fn held_back(text: &str, stop: &[String]) -> usize {
	let mut ready = text.len();
	if text.ends_with('\u{FFFD}') {
		ready = text.trim_end_matches('\u{FFFD}').len();
	}
	for s in stop.iter().filter(|s| !s.is_empty()) {
		for (start, _) in text[..ready].char_indices() {
			if s.starts_with(&text[start..ready]) {
				ready = start;
				break;
			}
		}
	}
	ready
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn stop_strings_cut_the_answer_and_hold_back_their_beginnings() {
		let stop = vec!["\nUser:".to_string(), "###".to_string()];
		assert_eq!(stop_at("Paris.\nUser: next", &stop), Some(6));
		assert_eq!(stop_at("Paris ### more", &stop), Some(6));
		assert_eq!(stop_at("Paris.", &stop), None);
		// A tail that may grow into a stop string waits; anything else goes out.
		assert_eq!(held_back("Paris.\nUs", &stop), 6);
		assert_eq!(held_back("Paris #", &stop), 6);
		assert_eq!(held_back("Paris", &stop), 5);
		assert_eq!(held_back("caf\u{FFFD}", &[]), 3);
	}
}
