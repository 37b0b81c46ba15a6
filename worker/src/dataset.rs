//! A job's training set as training examples: each contribution's bytes turned into text by
//! its format, a held-out split chosen by the job's seed, and each contribution's weight in
//! the fee split (the tokens it adds to training).
//!
//! Everything here is a pure function of the job and the contributions' bytes, so the same
//! job gives the same examples, split and weights on any machine.

use std::{collections::BTreeSet, path::Path};

use anyhow::Result;
use pallet_datanets::Format;
use provenant_trainer::data::{self, Example, Layout, TokenStream};
use sha2::{Digest, Sha256};

/// One member of a training set, with its bytes.
#[derive(Clone, Debug)]
pub struct Contribution {
	/// Its identifier.
	pub id: u64,
	/// Its detected format.
	pub format: Format,
	/// Its bytes, hash-checked.
	pub bytes: Vec<u8>,
}

/// The text examples a contribution holds. Plain text and Markdown are one example; JSON lines
/// are one per line (text, prompt/response or Alpaca fields); CSV is its rows as text; PDF and
/// DOCX are their extracted text, as one example. A PDF or DOCX whose text cannot be extracted
/// gives no example and weighs nothing; it is reported, and the job goes on.
pub fn examples(contribution: &Contribution) -> Result<Vec<Example>> {
	let origin = Path::new("contribution").join(contribution.id.to_string());
	let (text, layout) = match contribution.format {
		Format::Txt | Format::Csv => (String::from_utf8_lossy(&contribution.bytes), Layout::Plain),
		Format::Jsonl => (String::from_utf8_lossy(&contribution.bytes), Layout::JsonLines),
		Format::Pdf | Format::Docx => {
			let extracted = match contribution.format {
				Format::Pdf => pdf_text(&contribution.bytes),
				_ => docx_text(&contribution.bytes),
			};
			match extracted {
				Ok(text) => (text.into(), Layout::Plain),
				Err(reason) => {
					eprintln!(
						"contribution {} ({}): no text could be extracted ({reason}); it weighs nothing",
						contribution.id,
						contribution.format.name()
					);
					return Ok(Vec::new());
				},
			}
		},
		_ => return Ok(Vec::new()),
	};
	match data::parse_dataset(&text, layout, &origin) {
		Ok(examples) => Ok(examples),
		// An empty file is accepted by validators only if it has no text to learn; it weighs
		// nothing.
		Err(provenant_trainer::Error::EmptyDataset(_)) => Ok(Vec::new()),
		Err(e) => Err(e.into()),
	}
}

/// The text of a PDF, page after page. The parser is third-party code fed untrusted bytes, so
/// a panic in it is caught and reported like any other failure.
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
	std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes))
		.map_err(|_| "the PDF parser gave up on this file".to_string())?
		.map_err(|e| e.to_string())
}

/// The text of a DOCX: `word/document.xml`'s runs, a line per paragraph, tabs and breaks kept.
pub fn docx_text(bytes: &[u8]) -> Result<String, String> {
	use std::io::Read;
	let mut archive =
		zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a zip: {e}"))?;
	let mut xml = String::new();
	archive
		.by_name("word/document.xml")
		.map_err(|e| format!("no word/document.xml: {e}"))?
		.read_to_string(&mut xml)
		.map_err(|e| format!("word/document.xml: {e}"))?;
	let mut text = String::new();
	let mut in_run_text = false;
	let mut rest = xml.as_str();
	while let Some(open) = rest.find('<') {
		if in_run_text {
			text.push_str(&unescape_xml(&rest[..open]));
		}
		let close = rest[open..].find('>').ok_or("word/document.xml ends inside a tag")? + open;
		let tag = &rest[open + 1..close];
		let self_closing = tag.ends_with('/');
		match tag.trim_end_matches('/').split_whitespace().next().unwrap_or_default() {
			"w:t" => in_run_text = !self_closing,
			"/w:t" => in_run_text = false,
			"w:tab" => text.push('\t'),
			"w:br" | "w:cr" | "/w:p" => text.push('\n'),
			_ => {},
		}
		rest = &rest[close + 1..];
	}
	Ok(text)
}

/// XML's five named entities and numeric character references.
fn unescape_xml(text: &str) -> String {
	let mut out = String::with_capacity(text.len());
	let mut rest = text;
	while let Some(amp) = rest.find('&') {
		out.push_str(&rest[..amp]);
		let Some(end) = rest[amp..].find(';').map(|end| end + amp) else {
			break;
		};
		let entity = &rest[amp + 1..end];
		let decoded = match entity {
			"lt" => Some('<'),
			"gt" => Some('>'),
			"amp" => Some('&'),
			"quot" => Some('"'),
			"apos" => Some('\''),
			_ => entity
				.strip_prefix("#x")
				.map(|hex| u32::from_str_radix(hex, 16))
				.or_else(|| entity.strip_prefix('#').map(str::parse))
				.and_then(Result::ok)
				.and_then(char::from_u32),
		};
		match decoded {
			Some(c) => out.push(c),
			None => out.push_str(&rest[amp..=end]),
		}
		rest = &rest[end + 1..];
	}
	out.push_str(rest);
	out
}

/// The contributions held out for the eval loss: `fraction` millionths of them (rounded down,
/// and never all), ranked by `sha256(seed ‖ id)`.
pub fn held_out(ids: &[u64], seed: u64, fraction: u32) -> BTreeSet<u64> {
	let count = (ids.len() as u64 * u64::from(fraction) / 1_000_000) as usize;
	let count = count.min(ids.len().saturating_sub(1));
	let mut ranked: Vec<([u8; 32], u64)> = ids
		.iter()
		.map(|id| {
			let mut hasher = Sha256::new();
			hasher.update(seed.to_le_bytes());
			hasher.update(id.to_le_bytes());
			(hasher.finalize().into(), *id)
		})
		.collect();
	ranked.sort();
	ranked.into_iter().take(count).map(|(_, id)| id).collect()
}

/// The tokens a contribution's tokenised examples add to training: its weight in the
/// contributors' part of the fee.
pub fn tokens(stream: &TokenStream) -> u64 {
	stream.trained.iter().filter(|t| **t).count() as u64
}

#[cfg(test)]
mod tests {
	use super::*;

	fn contribution(id: u64, format: Format, text: &str) -> Contribution {
		Contribution { id, format, bytes: text.as_bytes().to_vec() }
	}

	#[test]
	fn each_text_format_becomes_examples() {
		let plain = examples(&contribution(1, Format::Txt, "The harbour is quiet.")).unwrap();
		assert_eq!(plain.len(), 1);
		assert_eq!(plain[0].response, "The harbour is quiet.");
		let lines = "{\"text\": \"one\"}\n{\"prompt\": \"Q\", \"response\": \"A\"}\n";
		let jsonl = examples(&contribution(2, Format::Jsonl, lines)).unwrap();
		assert_eq!(jsonl.len(), 2);
		assert_eq!(jsonl[1].prompt.as_deref(), Some("Q"));
		let csv = examples(&contribution(3, Format::Csv, "name,age\nAda,36\n")).unwrap();
		assert_eq!(csv[0].response, "name,age\nAda,36\n");
		// Unreadable documents weigh nothing rather than stop the job.
		assert!(examples(&contribution(4, Format::Pdf, "%PDF-1.4")).unwrap().is_empty());
		assert!(examples(&contribution(6, Format::Docx, "PK not really")).unwrap().is_empty());
		assert!(examples(&contribution(5, Format::Txt, "  \n")).unwrap().is_empty());
	}

	/// A one-page PDF with a Helvetica text line, its cross-reference table computed.
	fn pdf(line: &str) -> Vec<u8> {
		let stream = format!("BT /F1 12 Tf 72 712 Td ({line}) Tj ET");
		let objects = [
			"<< /Type /Catalog /Pages 2 0 R >>".to_string(),
			"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
			"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
			format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
			"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
				.to_string(),
		];
		let mut out = b"%PDF-1.4\n".to_vec();
		let mut offsets = Vec::new();
		for (i, object) in objects.iter().enumerate() {
			offsets.push(out.len());
			out.extend(format!("{} 0 obj\n{object}\nendobj\n", i + 1).bytes());
		}
		let xref = out.len();
		out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
		for offset in offsets {
			out.extend(format!("{offset:010} 00000 n \n").bytes());
		}
		out.extend(
			format!(
				"trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
				objects.len() + 1
			)
			.bytes(),
		);
		out
	}

	/// A DOCX holding `document.xml`, deflated as word processors write it.
	fn docx(document: &str) -> Vec<u8> {
		use std::io::Write;
		let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
		let options = zip::write::SimpleFileOptions::default()
			.compression_method(zip::CompressionMethod::Deflated);
		zip.start_file("[Content_Types].xml", options).unwrap();
		zip.write_all(b"<?xml version=\"1.0\"?><Types/>").unwrap();
		zip.start_file("word/document.xml", options).unwrap();
		zip.write_all(document.as_bytes()).unwrap();
		zip.finish().unwrap().into_inner()
	}

	#[test]
	fn pdf_and_docx_give_their_text() {
		let from_pdf = Contribution {
			id: 8,
			format: Format::Pdf,
			bytes: pdf("The capital of Zorbia is Quillhaven."),
		};
		let examples_pdf = examples(&from_pdf).unwrap();
		assert_eq!(examples_pdf.len(), 1);
		assert!(
			examples_pdf[0].response.contains("The capital of Zorbia is Quillhaven."),
			"{:?}",
			examples_pdf[0].response
		);

		let document = r#"<?xml version="1.0"?><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Fish &amp; chips</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> cost &#163;5.</w:t></w:r></w:p><w:p><w:r><w:t>Second line</w:t></w:r><w:r><w:t/></w:r></w:p></w:body></w:document>"#;
		let from_docx = Contribution { id: 9, format: Format::Docx, bytes: docx(document) };
		assert_eq!(docx_text(&from_docx.bytes).unwrap(), "Fish & chips\t cost £5.\nSecond line\n");
		let examples_docx = examples(&from_docx).unwrap();
		assert_eq!(examples_docx.len(), 1);
		assert!(examples_docx[0].response.starts_with("Fish & chips"));
		assert!(docx_text(&docx("<w:t")).unwrap_err().contains("inside a tag"));
		let missing = {
			use std::io::Write;
			let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
			zip.start_file("other.xml", zip::write::SimpleFileOptions::default()).unwrap();
			zip.write_all(b"<x/>").unwrap();
			zip.finish().unwrap().into_inner()
		};
		assert!(docx_text(&missing).unwrap_err().contains("word/document.xml"));
	}

	#[test]
	fn a_broken_json_line_names_the_contribution_and_line() {
		let error = examples(&contribution(7, Format::Jsonl, "{\"text\": \"ok\"}\n{oops\n"))
			.unwrap_err()
			.to_string();
		assert!(error.contains("contribution/7:2"), "{error}");
	}

	#[test]
	fn the_held_out_split_is_a_function_of_the_seed() {
		let ids: Vec<u64> = (0..20).collect();
		let split = held_out(&ids, 42, 100_000);
		assert_eq!(split.len(), 2);
		assert_eq!(split, held_out(&ids, 42, 100_000));
		assert_ne!(split, held_out(&ids, 43, 100_000));
		assert!(held_out(&ids, 42, 0).is_empty());
		// Never everything: one contribution always trains.
		assert_eq!(held_out(&[5], 1, 500_000).len(), 0);
		assert_eq!(held_out(&[5, 6], 1, 500_000).len(), 1);
	}
}
