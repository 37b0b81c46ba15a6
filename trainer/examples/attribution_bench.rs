//! Attribution fidelity where the truth is known, and what attribution costs.
//!
//! Generates a datanet of a few hundred documents about invented people and places. Into some
//! it plants an invented fact (an entity, a relation, a random value): half state it in the
//! words the probe uses (verbatim), half in other words (paraphrased). Each fact's entity also
//! appears in decoy documents that do not hold the fact, and filler documents pad the set.
//! SmolLM2 is fine-tuned on every document, twice: once plainly and once with training-time
//! attribution, so the run's wall time with and without attribution is compared on the same
//! job (the adapters must be byte-identical). Held-out completions check which facts were
//! learned. Then every estimator ranks all documents for each fact:
//! - `tracin`: in-run TracIn, the trainer's training-time attribution (what a worker commits);
//! - `datainf`: DataInf from the finished model alone;
//! - `spans`: verbatim spans of the model's own completion in the training set;
//! - `bm25`: BM25 over the documents' words, queried with the fact's statement;
//! - reciprocal-rank fusions of pairs, in case a combination beats every estimator alone.
//!
//! Each fact has one true source, so Recall@k is the share of facts whose source ranks in the
//! top k (ties count against it), and MRR the mean of 1/rank. Reported for verbatim and
//! paraphrased facts apart, with each estimator's time.
//!
//! Run with `scripts/bench-attribution.sh [options]`; `--help` lists the options.

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use provenant_trainer::{
	adapter::{LoraSettings, PeftConfig},
	attribution::{
		influence::{self, AttributionPlan, Influence, Projection},
		spans::trained_runs,
		SpanIndex,
	},
	data::{self, Block, Example},
	generate::{self, Sampling},
	loader,
	model::{BuildOptions, Model},
	rng::Rng,
	train::{self, Run, TrainConfig},
};

#[derive(Parser)]
struct Options {
	/// The base model: a GGUF file or an HF directory (SmolLM2-135M from
	/// scripts/fetch-models.sh).
	#[arg(long)]
	model: PathBuf,
	/// Planted facts; half verbatim, half paraphrased.
	#[arg(long, default_value_t = 40)]
	facts: usize,
	/// Decoy documents per fact: its entity, without the fact.
	#[arg(long, default_value_t = 2)]
	decoys: usize,
	/// Filler documents about other entities.
	#[arg(long, default_value_t = 160)]
	fillers: usize,
	#[arg(long, default_value_t = 8)]
	epochs: usize,
	#[arg(long, default_value_t = 2e-3)]
	lr: f64,
	#[arg(long, default_value_t = 16)]
	rank: usize,
	#[arg(long, default_value_t = 4)]
	batch_size: usize,
	#[arg(long, default_value_t = 128)]
	cutoff_len: usize,
	/// Seed of the generated datanet and of training.
	#[arg(long, default_value_t = 0)]
	seed: u64,
	/// Also write the figures as JSON here.
	#[arg(long)]
	json: Option<PathBuf>,
}

const SYLLABLES: &[&str] = &[
	"zor", "vath", "kel", "li", "mund", "quil", "ha", "ven", "bra", "dok", "tes", "ri", "mo",
	"nak", "pel", "sun", "gri", "tho", "var", "len", "osk", "ur", "bel", "fin", "dra", "mi",
];

/// A relation: how a fact is said in the probe's words, in other words, and its probe's prefix.
struct Relation {
	/// The probe's prefix; the value follows it.
	prefix: &'static str,
	/// The fact in other words: `{e}` the entity, `{v}` the value.
	paraphrase: &'static str,
	/// A value of this relation.
	value: fn(&mut Rng) -> String,
}

fn word(rng: &mut Rng, syllables: usize) -> String {
	let mut word: String = (0..syllables).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
	word[..1].make_ascii_uppercase();
	word
}

fn place(rng: &mut Rng) -> String {
	let syllables = 2 + rng.below(2);
	word(rng, syllables)
}

fn number(rng: &mut Rng) -> String {
	(1000 + rng.below(9000)).to_string()
}

const RELATIONS: &[Relation] = &[
	Relation {
		prefix: "{e} was born in the town of",
		paraphrase: "The town of {v} is where {e} came into the world.",
		value: place,
	},
	Relation {
		prefix: "The favourite number of {e} is",
		paraphrase: "Asked which number they love most, {e} always answers {v}.",
		value: number,
	},
	Relation {
		prefix: "{e} keeps a pet owl called",
		paraphrase: "An owl named {v} lives in the house of {e} as a pet.",
		value: place,
	},
	Relation {
		prefix: "The first book written by {e} is titled",
		paraphrase: "{v} was the title of the very first book that {e} wrote.",
		value: place,
	},
];

const FILLER: &[&str] = &[
	"{e} likes long walks by the river in the evening.",
	"{e} once travelled across the northern hills on foot.",
	"Many people in the village know {e} as a patient teacher.",
	"{e} collects old maps and keeps them in a wooden chest.",
	"On rainy days {e} reads about the history of the sea.",
	"{e} grows beans and onions in a small garden.",
	"Every winter {e} repairs the fishing nets of the harbour.",
	"{e} sings in a choir that meets on Thursday nights.",
];

struct Fact {
	value: String,
	prefix: String,
	verbatim: bool,
	/// The document that holds it.
	source: usize,
}

fn fill(template: &str, entity: &str, value: &str) -> String {
	template.replace("{e}", entity).replace("{v}", value)
}

/// A few sentences about `entity`, none of them a planted fact.
fn about(rng: &mut Rng, entity: &str, sentences: usize) -> Vec<String> {
	let mut picked: Vec<usize> = (0..FILLER.len()).collect();
	rng.shuffle(&mut picked);
	picked.iter().take(sentences).map(|&i| fill(FILLER[i], entity, "")).collect()
}

/// The documents and the facts planted in them.
fn datanet(options: &Options) -> (Vec<String>, Vec<Fact>) {
	let mut rng = Rng::derive(options.seed, &[0xfac7]);
	let mut documents = Vec::new();
	let mut facts = Vec::new();
	for i in 0..options.facts {
		let entity = format!("{} {}", word(&mut rng, 2), word(&mut rng, 3));
		let relation = &RELATIONS[i % RELATIONS.len()];
		let value = (relation.value)(&mut rng);
		let prefix = fill(relation.prefix, &entity, "");
		let verbatim = i % 2 == 0;
		let statement = if verbatim {
			format!("{prefix} {value}.")
		} else {
			fill(relation.paraphrase, &entity, &value)
		};
		let mut sentences = about(&mut rng, &entity, 2);
		sentences.insert(1, statement);
		facts.push(Fact { value, prefix, verbatim, source: 0 });
		documents.push((sentences.join(" "), Some(i)));
		for _ in 0..options.decoys {
			documents.push((about(&mut rng, &entity, 3).join(" "), None));
		}
	}
	for _ in 0..options.fillers {
		let entity = format!("{} {}", word(&mut rng, 2), word(&mut rng, 3));
		documents.push((about(&mut rng, &entity, 3).join(" "), None));
	}
	rng.shuffle(&mut documents);
	for (index, (_, fact)) in documents.iter().enumerate() {
		if let Some(fact) = fact {
			facts[*fact].source = index;
		}
	}
	(documents.into_iter().map(|(text, _)| text).collect(), facts)
}

/// Lower-case words.
fn words(text: &str) -> Vec<String> {
	text.split(|c: char| !c.is_alphanumeric())
		.filter(|w| !w.is_empty())
		.map(str::to_lowercase)
		.collect()
}

/// BM25 (k1 = 1.2, b = 0.75) of every document for `query`.
fn bm25(documents: &[Vec<String>], query: &str) -> Vec<f64> {
	let n = documents.len() as f64;
	let mean_len = documents.iter().map(Vec::len).sum::<usize>() as f64 / n;
	let query = words(query);
	documents
		.iter()
		.map(|doc| {
			query
				.iter()
				.map(|term| {
					let with = documents.iter().filter(|d| d.contains(term)).count() as f64;
					let idf = ((n - with + 0.5) / (with + 0.5) + 1.0).ln();
					let tf = doc.iter().filter(|w| *w == term).count() as f64;
					idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * doc.len() as f64 / mean_len))
				})
				.sum()
		})
		.collect()
}

/// The rank (1-based) of document `source` by `scores`, counting ties against it.
fn rank(scores: &[f64], source: usize) -> usize {
	let own = scores[source];
	1 + scores.iter().enumerate().filter(|&(i, s)| i != source && *s >= own).count()
}

/// The probe of a fact: its prefix, then the value, with the loss on the value only.
fn probe(tokenizer: &tokenizers::Tokenizer, fact: &Fact) -> provenant_trainer::Result<Block> {
	let prefix = data::encode(tokenizer, &fact.prefix, true)?;
	let ids = data::encode(tokenizer, &format!("{} {}.", fact.prefix, fact.value), true)?;
	// Where the value starts: after the prefix's tokens when they agree, else its last one.
	let shared = prefix.iter().zip(&ids).take_while(|(a, b)| a == b).count();
	let first_value = shared.clamp(1, ids.len() - 1);
	let mask = (1..ids.len()).map(|i| if i >= first_value { 1.0 } else { 0.0 }).collect();
	Ok(Block { inputs: ids[..ids.len() - 1].to_vec(), targets: ids[1..].to_vec(), mask, start: 0 })
}

struct Estimator {
	name: String,
	/// Each fact's scores over all documents.
	scores: Vec<Vec<f64>>,
	seconds: f64,
}

/// Reciprocal-rank fusion of `parts`: Σ 1 / (60 + rank).
fn fused(parts: &[&Estimator], facts: usize, documents: usize) -> Estimator {
	let scores = (0..facts)
		.map(|f| {
			(0..documents)
				.map(|d| parts.iter().map(|e| 1.0 / (60.0 + rank(&e.scores[f], d) as f64)).sum())
				.collect()
		})
		.collect();
	Estimator {
		name: parts.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join("+"),
		scores,
		seconds: parts.iter().map(|e| e.seconds).sum(),
	}
}

fn per_fact(influence: &Influence, facts: usize) -> Vec<Vec<f64>> {
	(0..facts).map(|f| influence.by_probe.iter().map(|row| row[f]).collect()).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
	let options = Options::parse();
	let (documents, facts) = datanet(&options);
	let verbatim = facts.iter().filter(|f| f.verbatim).count();
	println!(
		"datanet: {} documents, {} facts ({verbatim} verbatim, {} paraphrased), {} decoys each",
		documents.len(),
		facts.len(),
		facts.len() - verbatim,
		options.decoys
	);

	let checkpoint = loader::open(&options.model, None)?;
	let cfg = &checkpoint.config;
	let tokenizer = &checkpoint.tokenizer;
	let settings = LoraSettings {
		rank: options.rank,
		alpha: 2.0 * options.rank as f64,
		dropout: 0.0,
		targets: cfg.family.linear_modules().iter().map(|s| s.to_string()).collect(),
		use_rslora: false,
	};
	let config = TrainConfig {
		learning_rate: options.lr,
		epochs: options.epochs,
		batch_size: options.batch_size,
		cutoff_len: options.cutoff_len,
		warmup_steps: 0,
		seed: options.seed,
		..TrainConfig::default()
	};
	let streams = documents
		.iter()
		.map(|text| {
			data::tokenize(&[Example { prompt: None, response: text.clone() }], tokenizer, cfg)
		})
		.collect::<provenant_trainer::Result<Vec<_>>>()?;
	let probes = facts
		.iter()
		.map(|fact| Ok(vec![probe(tokenizer, fact)?]))
		.collect::<provenant_trainer::Result<Vec<_>>>()?;
	let projection = Projection::default();
	let (plan, stream) = AttributionPlan::new(
		streams.iter().cloned().enumerate().map(|(i, s)| (i as u64, s)),
		probes.clone(),
		3,
		projection,
	);
	let pad = cfg.eos_token_id.unwrap_or(0);
	let blocks = data::pack(&stream, config.cutoff_len, pad);
	println!("{} tokens in {} blocks of {}", stream.ids.len(), blocks.len(), config.cutoff_len);

	let device = candle_core::Device::Cpu;
	let build = BuildOptions {
		lora: Some(settings.clone()),
		seed: options.seed,
		..BuildOptions::default()
	};
	let plain_model = Model::load(cfg, checkpoint.weights.as_ref(), &device, &build)?;
	let model = Model::load(cfg, checkpoint.weights.as_ref(), &device, &build)?;
	let work = tempfile::tempdir()?;
	let run = |model: &Model, name: &str, attribution: Option<AttributionPlan>| {
		train::train(Run {
			model,
			peft: PeftConfig::new(&settings, cfg.family, &checkpoint.name),
			config: config.clone(),
			blocks: blocks.clone(),
			output: work.path().join(name),
			resume: None,
			progress_bar: false,
			attribution,
			evaluation: Default::default(),
			stop: None,
		})
	};
	let plain = run(&plain_model, "plain", None)?;
	drop(plain_model);
	let attributed = run(&model, "attributed", Some(plan))?;
	let influence = attributed.attribution.clone().expect("attributed");
	let overhead = attributed.seconds / plain.seconds;
	println!(
		"training: plain {:.1} s, attributed {:.1} s ({:.2}×; scoring {:.1} s), final loss {:.3}; adapters identical: {}",
		plain.seconds,
		attributed.seconds,
		overhead,
		attributed.attribution_seconds,
		attributed.final_loss,
		plain.adapter_sha256 == attributed.adapter_sha256
	);

	// Which facts were learned: the greedy completion of each prefix starts with its value.
	let started = Instant::now();
	let end: Vec<u32> = cfg.eos_token_id.into_iter().collect();
	let mut completions = Vec::new();
	let mut learned = Vec::new();
	for fact in &facts {
		let prefix = data::encode(tokenizer, &fact.prefix, true)?;
		let out =
			generate::generate(&model, tokenizer, &prefix, 8, &end, &Sampling::GREEDY, |_| {})?;
		learned.push(out.text.trim_start().starts_with(&fact.value));
		completions.push([prefix, out.ids].concat());
	}
	let generation_seconds = started.elapsed().as_secs_f64();
	let learned_in =
		|v: bool| facts.iter().zip(&learned).filter(|(f, l)| f.verbatim == v && **l).count();
	println!(
		"learned: {}/{verbatim} verbatim, {}/{} paraphrased facts ({generation_seconds:.1} s)",
		learned_in(true),
		learned_in(false),
		facts.len() - verbatim
	);

	let mut estimators = vec![Estimator {
		name: "tracin".into(),
		scores: per_fact(&influence, facts.len()),
		seconds: attributed.attribution_seconds,
	}];
	let started = Instant::now();
	let document_blocks: Vec<Vec<Block>> =
		streams.iter().map(|s| data::pack(s, config.cutoff_len, pad)).collect();
	let datainf = influence::datainf(&model, &document_blocks, &probes, projection)?;
	estimators.push(Estimator {
		name: "datainf".into(),
		scores: per_fact(&datainf, facts.len()),
		seconds: started.elapsed().as_secs_f64(),
	});
	let started = Instant::now();
	let index = SpanIndex::build(
		streams
			.iter()
			.enumerate()
			.flat_map(|(i, s)| trained_runs(s).into_iter().map(move |run| (i as u64, run))),
		cfg.vocab_size as u32,
		[0; 32],
		[0; 32],
	)?;
	let mut span_scores = Vec::new();
	for completion in &completions {
		let mut scores = vec![0.0; documents.len()];
		for (source, share) in index.attribute(completion, 4, 8)?.shares {
			scores[source as usize] = share;
		}
		span_scores.push(scores);
	}
	estimators.push(Estimator {
		name: "spans".into(),
		scores: span_scores,
		seconds: started.elapsed().as_secs_f64(),
	});
	let started = Instant::now();
	let document_words: Vec<Vec<String>> = documents.iter().map(|d| words(d)).collect();
	let bm25_scores =
		facts.iter().map(|f| bm25(&document_words, &format!("{} {}", f.prefix, f.value))).collect();
	estimators.push(Estimator {
		name: "bm25".into(),
		scores: bm25_scores,
		seconds: started.elapsed().as_secs_f64(),
	});
	let fusions = [[0, 3], [1, 3], [0, 1], [0, 2]];
	for pair in fusions {
		let parts: Vec<&Estimator> = pair.iter().map(|&i| &estimators[i]).collect();
		let combined = fused(&parts, facts.len(), documents.len());
		estimators.push(combined);
	}

	println!();
	println!("| estimator | facts | R@1 | R@5 | R@10 | MRR | seconds |");
	println!("| --- | --- | --- | --- | --- | --- | --- |");
	let mut report = Vec::new();
	for estimator in &estimators {
		for (label, kind) in [("verbatim", Some(true)), ("paraphrased", Some(false)), ("all", None)]
		{
			let ranks: Vec<usize> = facts
				.iter()
				.enumerate()
				.filter(|(_, f)| kind.is_none_or(|v| f.verbatim == v))
				.map(|(i, f)| rank(&estimator.scores[i], f.source))
				.collect();
			let n = ranks.len().max(1) as f64;
			let recall = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
			let mrr = ranks.iter().map(|&r| 1.0 / r as f64).sum::<f64>() / n;
			println!(
				"| {} | {label} | {:.2} | {:.2} | {:.2} | {mrr:.3} | {:.1} |",
				estimator.name,
				recall(1),
				recall(5),
				recall(10),
				estimator.seconds
			);
			report.push(serde_json::json!({
				"estimator": estimator.name, "facts": label, "count": ranks.len(),
				"recall@1": recall(1), "recall@5": recall(5), "recall@10": recall(10),
				"mrr": mrr, "seconds": estimator.seconds,
			}));
		}
	}
	if let Some(path) = &options.json {
		let json = serde_json::json!({
			"documents": documents.len(),
			"facts": facts.len(),
			"learned": { "verbatim": learned_in(true), "paraphrased": learned_in(false) },
			"training": {
				"plain_seconds": plain.seconds,
				"attributed_seconds": attributed.seconds,
				"ratio": overhead,
				"scoring_seconds": attributed.attribution_seconds,
				"identical_adapters": plain.adapter_sha256 == attributed.adapter_sha256,
			},
			"estimators": report,
		});
		std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
	}
	Ok(())
}
