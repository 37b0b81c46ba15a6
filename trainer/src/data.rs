//! Datasets: reading, chat templates, tokenising with a prompt mask, and packing.
//!
//! Accepted files:
//! - JSON lines, one example per line: `{"text": …}`, `{"prompt": …, "response": …}`, or
//!   Alpaca's `{"instruction": …, "input": …, "output": …}`. Blank lines are skipped; any other
//!   line that is not one of these is an error naming the line.
//! - `.txt` / `.md`: the whole file is one text example.
//!
//! Prompt/response examples are rendered with the model's chat template, and the loss is taken
//! on the response only. All examples are tokenised into one stream that is cut into blocks of
//! `cutoff_len + 1` tokens (packing), so no compute goes to padding.

use crate::{
	config::{Family, ModelConfig},
	Error, Result,
};
use candle_core::{Device, Tensor};
use serde_json::Value;
use std::path::Path;
use tokenizers::Tokenizer;

/// One training example.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
	/// The prompt, masked out of the loss; `None` for plain text.
	pub prompt: Option<String>,
	/// The text the model learns to produce.
	pub response: String,
}

fn string_field(
	object: &serde_json::Map<String, Value>,
	name: &str,
) -> std::result::Result<Option<String>, String> {
	match object.get(name) {
		None | Some(Value::Null) => Ok(None),
		Some(Value::String(s)) => Ok(Some(s.clone())),
		Some(other) => Err(format!("field {name:?} must be a string, found {other}")),
	}
}

fn parse_line(line: &str) -> std::result::Result<Option<Example>, String> {
	let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
	let Value::Object(object) = value else { return Err("expected a JSON object".into()) };
	if let Some(text) = string_field(&object, "text")? {
		return Ok((!text.trim().is_empty()).then_some(Example { prompt: None, response: text }));
	}
	if let (Some(prompt), Some(response)) =
		(string_field(&object, "prompt")?, string_field(&object, "response")?)
	{
		return Ok(Some(Example { prompt: Some(prompt), response }));
	}
	if let (Some(instruction), Some(output)) =
		(string_field(&object, "instruction")?, string_field(&object, "output")?)
	{
		let prompt = match string_field(&object, "input")? {
			Some(input) if !input.trim().is_empty() => format!("{instruction}\n\n{input}"),
			_ => instruction,
		};
		return Ok(Some(Example { prompt: Some(prompt), response: output }));
	}
	Err("expected \"text\", \"prompt\" and \"response\", or Alpaca's \"instruction\" and \"output\"".into())
}

/// How a dataset's text is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
	/// The whole text is one example (`.txt`, `.md`).
	Plain,
	/// One JSON object per line (`.jsonl`): text, prompt/response or Alpaca fields.
	JsonLines,
}

impl Layout {
	/// The layout a file's extension implies.
	pub fn of(path: &Path) -> Self {
		match path.extension().and_then(|e| e.to_str()).unwrap_or_default() {
			"txt" | "md" => Layout::Plain,
			_ => Layout::JsonLines,
		}
	}
}

/// Reads a dataset file.
pub fn read_dataset(path: &Path) -> Result<Vec<Example>> {
	let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
		std::io::ErrorKind::NotFound => {
			Error::Missing { what: "dataset", path: path.to_path_buf() }
		},
		_ => Error::Io { path: path.to_path_buf(), source: e },
	})?;
	parse_dataset(&text, Layout::of(path), path)
}

/// The examples in `text`, laid out as `layout`; `origin` names it in errors.
pub fn parse_dataset(text: &str, layout: Layout, origin: &Path) -> Result<Vec<Example>> {
	let examples = match layout {
		Layout::Plain => {
			if text.trim().is_empty() {
				vec![]
			} else {
				vec![Example { prompt: None, response: text.to_string() }]
			}
		},
		Layout::JsonLines => {
			let mut examples = Vec::new();
			for (index, line) in text.lines().enumerate() {
				if line.trim().is_empty() {
					continue;
				}
				let parsed = parse_line(line).map_err(|reason| Error::BadDatasetLine {
					path: origin.to_path_buf(),
					line: index + 1,
					reason,
				})?;
				examples.extend(parsed);
			}
			examples
		},
	};
	if examples.is_empty() {
		return Err(Error::EmptyDataset(origin.to_path_buf()));
	}
	Ok(examples)
}

/// Chat formats, chosen from the tokenizer's special tokens and the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
	/// `<|im_start|>user … <|im_end|>` (Qwen, SmolLM).
	ChatMl,
	/// `<|start_header_id|>user<|end_header_id|> … <|eot_id|>` (LLaMA 3).
	Llama3,
	/// `[INST] … [/INST]` (LLaMA 2, Mistral).
	Inst,
	/// `<|user|> … <|assistant|>` (ChatGLM3).
	ChatGlm3,
	/// `### Instruction: … ### Response:` (base models without a chat format).
	Alpaca,
}

impl Template {
	/// The template for this tokenizer and family.
	pub fn detect(tokenizer: &Tokenizer, family: Family) -> Self {
		let has = |t: &str| tokenizer.token_to_id(t).is_some();
		if has("<|im_start|>") && has("<|im_end|>") {
			Template::ChatMl
		} else if has("<|start_header_id|>") && has("<|eot_id|>") {
			Template::Llama3
		} else if has("<|user|>") && has("<|assistant|>") {
			Template::ChatGlm3
		} else if matches!(family, Family::Llama | Family::Mistral) {
			Template::Inst
		} else {
			Template::Alpaca
		}
	}

	/// The text before the response.
	pub fn prompt(self, prompt: &str) -> String {
		match self {
			Template::ChatMl => format!("<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"),
			Template::Llama3 => format!(
				"<|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
			),
			Template::Inst => format!("[INST] {prompt} [/INST]"),
			Template::ChatGlm3 => format!("<|user|>\n{prompt}<|assistant|>\n"),
			Template::Alpaca => format!("### Instruction:\n{prompt}\n\n### Response:\n"),
		}
	}

	/// A conversation as the model reads it: each `(role, content)` turn (`system`, `user` or
	/// `assistant`), then the opening of the assistant's answer. A lone user turn reads exactly
	/// as [`Template::prompt`]; templates without a system turn put its text before the first
	/// user message.
	pub fn conversation(self, turns: &[(&str, &str)]) -> std::result::Result<String, String> {
		if turns.is_empty() {
			return Err("the conversation has no messages".into());
		}
		if let Some((role, _)) =
			turns.iter().find(|(role, _)| !matches!(*role, "system" | "user" | "assistant"))
		{
			return Err(format!("role '{role}' is not system, user or assistant"));
		}
		let native_system =
			matches!(self, Template::ChatMl | Template::Llama3 | Template::ChatGlm3);
		let mut system = String::new();
		let mut text = String::new();
		for &(role, content) in turns {
			if role == "system" && !native_system {
				system.push_str(content);
				system.push_str("\n\n");
				continue;
			}
			let content = if role == "user" && !system.is_empty() {
				format!("{}{content}", std::mem::take(&mut system))
			} else {
				content.to_string()
			};
			text.push_str(&match (self, role) {
				(Template::ChatMl, _) => format!("<|im_start|>{role}\n{content}<|im_end|>\n"),
				(Template::Llama3, _) => {
					format!("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>")
				},
				(Template::ChatGlm3, _) => format!("<|{role}|>\n{content}"),
				(Template::Inst, "user") => format!("[INST] {content} [/INST]"),
				(Template::Inst, _) => format!(" {content} "),
				(Template::Alpaca, "user") => format!("### Instruction:\n{content}\n\n"),
				(Template::Alpaca, _) => format!("### Response:\n{content}\n\n"),
			});
		}
		text.push_str(match self {
			Template::ChatMl => "<|im_start|>assistant\n",
			Template::Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
			Template::ChatGlm3 => "<|assistant|>\n",
			Template::Inst => "",
			Template::Alpaca => "### Response:\n",
		});
		Ok(text)
	}

	/// The token that ends a response.
	pub fn end_token(self, tokenizer: &Tokenizer, cfg: &ModelConfig) -> Option<u32> {
		let named = match self {
			Template::ChatMl => tokenizer.token_to_id("<|im_end|>"),
			Template::Llama3 => tokenizer.token_to_id("<|eot_id|>"),
			_ => None,
		};
		named.or(cfg.eos_token_id).or_else(|| {
			["</s>", "<|endoftext|>", "<eos>"].iter().find_map(|t| tokenizer.token_to_id(t))
		})
	}
}

/// Tokenises `text`.
pub fn encode(tokenizer: &Tokenizer, text: &str, special: bool) -> Result<Vec<u32>> {
	Ok(tokenizer
		.encode(text, special)
		.map_err(|e| Error::Tokenizer(e.to_string()))?
		.get_ids()
		.to_vec())
}

/// Tokens and, for each, whether the loss is taken on predicting it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenStream {
	/// Token ids.
	pub ids: Vec<u32>,
	/// Whether each token is a target.
	pub trained: Vec<bool>,
}

impl TokenStream {
	/// Appends `other`: the stream of both texts' examples, in order.
	pub fn extend(&mut self, other: &TokenStream) {
		self.ids.extend_from_slice(&other.ids);
		self.trained.extend_from_slice(&other.trained);
	}
}

/// Tokenises every example into one stream: prompts masked, each response closed by the end
/// token.
pub fn tokenize(
	examples: &[Example],
	tokenizer: &Tokenizer,
	cfg: &ModelConfig,
) -> Result<TokenStream> {
	let template = Template::detect(tokenizer, cfg.family);
	let end = template.end_token(tokenizer, cfg);
	let mut stream = TokenStream::default();
	for example in examples {
		if let Some(prompt) = &example.prompt {
			let ids = encode(tokenizer, &template.prompt(prompt), true)?;
			stream.trained.extend(std::iter::repeat_n(false, ids.len()));
			stream.ids.extend(ids);
		}
		let mut ids = encode(tokenizer, &example.response, example.prompt.is_none())?;
		ids.extend(end);
		stream.trained.extend(std::iter::repeat_n(true, ids.len()));
		stream.ids.extend(ids);
	}
	Ok(stream)
}

/// One packed block: `inputs[i]` predicts `targets[i]`, which counts if `mask[i]` is 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
	/// `cutoff_len` input ids.
	pub inputs: Vec<u32>,
	/// `cutoff_len` target ids.
	pub targets: Vec<u32>,
	/// 1.0 where the target is trained, 0.0 for prompts and padding.
	pub mask: Vec<f32>,
	/// Where `inputs[0]` is in the stream the block was cut from.
	pub start: usize,
}

/// Cuts the stream into blocks of `cutoff_len` predictions. The tail is padded with masked
/// positions; blocks with nothing to learn are dropped.
pub fn pack(stream: &TokenStream, cutoff_len: usize, pad: u32) -> Vec<Block> {
	let mut blocks = Vec::new();
	let mut start = 0;
	while start + 1 < stream.ids.len() {
		let end = (start + cutoff_len + 1).min(stream.ids.len());
		let mut inputs = stream.ids[start..end - 1].to_vec();
		let mut targets = stream.ids[start + 1..end].to_vec();
		let mut mask: Vec<f32> =
			stream.trained[start + 1..end].iter().map(|&t| t as u8 as f32).collect();
		let padding = cutoff_len - inputs.len();
		inputs.extend(std::iter::repeat_n(pad, padding));
		targets.extend(std::iter::repeat_n(pad, padding));
		mask.extend(std::iter::repeat_n(0.0, padding));
		if mask.iter().any(|&m| m > 0.0) {
			blocks.push(Block { inputs, targets, mask, start });
		}
		start += cutoff_len;
	}
	blocks
}

/// A dataset file read, tokenised and packed.
#[derive(Clone, Debug)]
pub struct Packed {
	/// Examples in the file.
	pub examples: usize,
	/// Tokens in the stream, prompts included.
	pub tokens: usize,
	/// The packed blocks.
	pub blocks: Vec<Block>,
}

/// Reads `path` and packs it into blocks of `cutoff_len` for `cfg`'s model, padding with its
/// end-of-sequence token.
pub fn load_blocks(
	path: &Path,
	tokenizer: &Tokenizer,
	cfg: &ModelConfig,
	cutoff_len: usize,
) -> Result<Packed> {
	let examples = read_dataset(path)?;
	let stream = tokenize(&examples, tokenizer, cfg)?;
	let blocks = pack(&stream, cutoff_len, cfg.eos_token_id.unwrap_or(0));
	Ok(Packed { examples: examples.len(), tokens: stream.ids.len(), blocks })
}

/// Stacks blocks into `inputs`, `targets` (`[batch, cutoff]`, u32) and `mask` (f32).
pub fn batch(blocks: &[&Block], device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
	let (b, s) = (blocks.len(), blocks[0].inputs.len());
	let cat_u32 = |f: fn(&Block) -> &Vec<u32>| {
		blocks.iter().flat_map(|x| f(x).iter().copied()).collect::<Vec<_>>()
	};
	Ok((
		Tensor::from_vec(cat_u32(|x| &x.inputs), (b, s), device)?,
		Tensor::from_vec(cat_u32(|x| &x.targets), (b, s), device)?,
		Tensor::from_vec(
			blocks.iter().flat_map(|x| x.mask.iter().copied()).collect::<Vec<_>>(),
			(b, s),
			device,
		)?,
	))
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn a_lone_user_turn_reads_as_the_prompt_and_turns_keep_their_order() {
		let all = [
			Template::ChatMl,
			Template::Llama3,
			Template::Inst,
			Template::ChatGlm3,
			Template::Alpaca,
		];
		for template in all {
			assert_eq!(template.conversation(&[("user", "Hi?")]).unwrap(), template.prompt("Hi?"));
			let text = template
				.conversation(&[
					("system", "Be brief."),
					("user", "One?"),
					("assistant", "Uno."),
					("user", "Two?"),
				])
				.unwrap();
			let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{text}"));
			assert!(
				at("Be brief.") < at("One?") && at("One?") < at("Uno.") && at("Uno.") < at("Two?")
			);
		}
		assert!(Template::ChatMl.conversation(&[]).is_err());
		let error = Template::ChatMl.conversation(&[("tool", "x")]).unwrap_err();
		assert!(error.contains("'tool'"), "{error}");
	}

	#[test]
	fn every_dataset_shape_parses() {
		assert_eq!(parse_line(r#"{"text":"hello"}"#).unwrap().unwrap().response, "hello");
		let pr = parse_line(r#"{"prompt":"p","response":"r"}"#).unwrap().unwrap();
		assert_eq!((pr.prompt.as_deref(), pr.response.as_str()), (Some("p"), "r"));
		let alpaca =
			parse_line(r#"{"instruction":"i","input":"x","output":"o"}"#).unwrap().unwrap();
		assert_eq!(alpaca.prompt.as_deref(), Some("i\n\nx"));
		assert!(parse_line(r#"{"text":"  "}"#).unwrap().is_none());
		assert!(parse_line(r#"{"title":"x"}"#).unwrap_err().contains("expected \"text\""));
		assert!(parse_line(r#"{"text":3}"#).unwrap_err().contains("must be a string"));
		assert!(parse_line("[1]").unwrap_err().contains("JSON object"));
	}

	#[test]
	fn packing_shifts_targets_and_masks_prompts_and_padding() {
		let stream = TokenStream {
			ids: vec![1, 2, 3, 4, 5, 6],
			trained: vec![false, false, true, true, true, true],
		};
		let blocks = pack(&stream, 4, 0);
		assert_eq!(blocks.len(), 2);
		assert_eq!(blocks[0].inputs, [1, 2, 3, 4]);
		assert_eq!(blocks[0].targets, [2, 3, 4, 5]);
		assert_eq!(blocks[0].mask, [0.0, 1.0, 1.0, 1.0]);
		assert_eq!(blocks[1].inputs, [5, 0, 0, 0]);
		assert_eq!(blocks[1].targets, [6, 0, 0, 0]);
		assert_eq!(blocks[1].mask, [1.0, 0.0, 0.0, 0.0]);
	}
}
