//! Counters and gauges in Prometheus's text exposition format, at `GET /metrics`.

use std::{
	fmt::Write as _,
	sync::atomic::{AtomicUsize, Ordering},
};

/// The server's counters (monotonic) and gauges (current values).
#[derive(Debug, Default)]
pub struct Metrics {
	/// Requests answered, by outcome: `[ok, refused as busy, bad request, failed]`.
	pub requests: [AtomicUsize; 4],
	/// Prompt tokens read.
	pub prompt_tokens: AtomicUsize,
	/// Tokens generated.
	pub generated_tokens: AtomicUsize,
	/// Requests in the current step.
	pub running: AtomicUsize,
	/// Requests admitted and waiting for a place in the batch.
	pub queued: AtomicUsize,
	/// Adapter lookups found in the cache.
	pub cache_hits: AtomicUsize,
	/// Adapter lookups that had to load.
	pub cache_misses: AtomicUsize,
	/// Adapters evicted for the byte budget.
	pub cache_evictions: AtomicUsize,
	/// Adapters loaded and verified.
	pub adapter_loads: AtomicUsize,
	/// Bytes the cached adapters hold.
	pub cache_bytes: AtomicUsize,
	/// Adapters cached.
	pub cached_adapters: AtomicUsize,
}

/// Index of each outcome in [`Metrics::requests`].
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
	/// Answered.
	Ok = 0,
	/// Refused with 429.
	Busy = 1,
	/// Refused as malformed or naming what cannot be served.
	Bad = 2,
	/// Failed while serving.
	Failed = 3,
}

impl Metrics {
	/// Counts a request's outcome.
	pub fn count(&self, outcome: Outcome) {
		self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
	}

	/// The exposition text.
	pub fn render(&self) -> String {
		let mut out = String::new();
		let get = |a: &AtomicUsize| a.load(Ordering::Relaxed);
		let _ = writeln!(out, "# HELP provenant_requests_total Requests answered, by outcome.");
		let _ = writeln!(out, "# TYPE provenant_requests_total counter");
		for (name, counter) in ["ok", "busy", "bad_request", "failed"].iter().zip(&self.requests) {
			let _ =
				writeln!(out, "provenant_requests_total{{outcome=\"{name}\"}} {}", get(counter));
		}
		let series: [(&str, &str, &str, &AtomicUsize); 10] = [
			("prompt_tokens_total", "counter", "Prompt tokens read.", &self.prompt_tokens),
			("generated_tokens_total", "counter", "Tokens generated.", &self.generated_tokens),
			("running_requests", "gauge", "Requests in the current step.", &self.running),
			("queue_depth", "gauge", "Requests waiting for a place in the batch.", &self.queued),
			(
				"adapter_cache_hits_total",
				"counter",
				"Adapter lookups served from the cache.",
				&self.cache_hits,
			),
			(
				"adapter_cache_misses_total",
				"counter",
				"Adapter lookups that loaded.",
				&self.cache_misses,
			),
			(
				"adapter_cache_evictions_total",
				"counter",
				"Adapters evicted for the budget.",
				&self.cache_evictions,
			),
			(
				"adapter_loads_total",
				"counter",
				"Adapters fetched, verified and loaded.",
				&self.adapter_loads,
			),
			("adapter_cache_bytes", "gauge", "Bytes held by cached adapters.", &self.cache_bytes),
			("adapters_cached", "gauge", "Adapters in the cache.", &self.cached_adapters),
		];
		for (name, kind, help, value) in series {
			let _ = writeln!(out, "# HELP provenant_{name} {help}");
			let _ = writeln!(out, "# TYPE provenant_{name} {kind}");
			let _ = writeln!(out, "provenant_{name} {}", get(value));
		}
		out
	}
}
