//! The trainer's error type: every variant names what a person has to fix.

use std::path::PathBuf;

/// Everything that can go wrong while loading, training, evaluating or saving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
	/// A file the model directory or the command needs is not there.
	#[error("{what} not found at {path}")]
	Missing {
		/// What the file was for ("config.json", "adapter", …).
		what: &'static str,
		/// Where it was looked for.
		path: PathBuf,
	},
	/// A file exists but cannot be parsed.
	#[error("{path} is not a valid {what}: {reason}")]
	Corrupt {
		/// What kind of file it should have been.
		what: &'static str,
		/// The file.
		path: PathBuf,
		/// The parser's words.
		reason: String,
	},
	/// `config.json` names an architecture the trainer does not implement.
	#[error("unknown model family {0:?}: supported are llama, mistral, qwen2, qwen3, deepseek (dense), gpt2, bloom and chatglm")]
	UnknownFamily(String),
	/// A tensor the architecture needs is absent from the checkpoint.
	#[error("tensor {0} is missing from the checkpoint")]
	MissingTensor(String),
	/// A tensor has another shape than `config.json` implies.
	#[error("tensor {name} has shape {actual:?}, expected {expected:?}")]
	ShapeMismatch {
		/// The tensor's checkpoint name.
		name: String,
		/// The shape the config implies.
		expected: Vec<usize>,
		/// The shape in the file.
		actual: Vec<usize>,
	},
	/// The tokenizer can produce ids the model has no embedding for.
	#[error("the tokenizer has {tokenizer} tokens but the model's vocabulary has {model}: they do not belong together")]
	TokenizerMismatch {
		/// Tokens the tokenizer knows, added tokens included.
		tokenizer: usize,
		/// Rows of the embedding matrix.
		model: usize,
	},
	/// A hyper-parameter is out of range.
	#[error("invalid hyper-parameter {name}: {reason}")]
	InvalidHyperParameter {
		/// The flag's name.
		name: &'static str,
		/// What is wrong and what is allowed.
		reason: String,
	},
	/// A LoRA target does not name a linear module of this family.
	#[error("unknown target module {module:?} for {family}: this family has {available}")]
	UnknownTargetModule {
		/// The name given.
		module: String,
		/// The model family.
		family: &'static str,
		/// The names that exist, comma-separated.
		available: String,
	},
	/// The dataset yields no training tokens.
	#[error("dataset {0} is empty: it has no example with text to train on")]
	EmptyDataset(PathBuf),
	/// One line of a JSON-lines dataset is unusable.
	#[error("{path}:{line}: {reason}")]
	BadDatasetLine {
		/// The dataset file.
		path: PathBuf,
		/// The 1-based line number.
		line: usize,
		/// What is wrong with it.
		reason: String,
	},
	/// A checkpoint does not belong to the run being resumed.
	#[error("cannot resume from {path}: {reason}")]
	Resume {
		/// The checkpoint directory.
		path: PathBuf,
		/// Why it does not fit.
		reason: String,
	},
	/// A file could not be read or written.
	#[error("{path}: {source}")]
	Io {
		/// The file.
		path: PathBuf,
		/// The operating system's error.
		source: std::io::Error,
	},
	/// The tensor library failed.
	#[error(transparent)]
	Candle(#[from] candle_core::Error),
	/// The tokenizer failed.
	#[error("tokenizer: {0}")]
	Tokenizer(String),
	/// Attribution was asked of data it cannot use.
	#[error("{0}")]
	Attribution(String),
	/// The run's stop flag was raised; it ended after `step` steps without an adapter.
	#[error("stopped after {step} steps, as asked")]
	Stopped {
		/// Steps done when the run stopped.
		step: usize,
	},
}

/// The trainer's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
	/// Wraps an I/O error with the path it happened on.
	pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
		let path = path.into();
		move |source| Error::Io { path, source }
	}

	/// A bad hyper-parameter.
	pub fn hyper(name: &'static str, reason: impl Into<String>) -> Error {
		Error::InvalidHyperParameter { name, reason: reason.into() }
	}
}
