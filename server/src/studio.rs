//! Serves Studio's production build (`studio/dist`) beside the API, so the web app and the
//! OpenAI API it chats through share one origin and the stack needs no extra process.
//!
//! Any path that names no file and has no extension is one of the app's own pages, so it gets
//! `index.html` and the app's router takes over: a shared link such as `/datanets/3` opens
//! that page. `GET /config.json` tells the app which node to talk to.

use std::{
	path::{Component, Path, PathBuf},
	sync::Arc,
};

use axum::{
	extract::State,
	http::{header, StatusCode, Uri},
	response::{IntoResponse, Response},
	routing::get,
	Json, Router,
};
use serde_json::json;

/// Where the build lies and what the app is told.
pub struct Studio {
	dir: PathBuf,
	chain: Option<String>,
}

impl Studio {
	/// Serves the build in `dir`, which must hold `index.html`; `chain` is the node's WebSocket
	/// endpoint the app connects to (none when the server runs without a chain).
	pub fn new(dir: PathBuf, chain: Option<String>) -> Result<Self, String> {
		if !dir.join("index.html").is_file() {
			return Err(format!(
				"{} holds no index.html: build Studio first (`npm run build` in studio/)",
				dir.display()
			));
		}
		Ok(Self { dir, chain })
	}

	/// The file a request path names, if it stays inside the build.
	fn file(&self, path: &str) -> Option<PathBuf> {
		let relative = Path::new(path.trim_start_matches('/'));
		// Only plain names: no `..`, no root, no drive, so nothing outside the build is read.
		if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
			return None;
		}
		let file = self.dir.join(relative);
		file.is_file().then_some(file)
	}
}

/// Studio's routes: its configuration and, for every other path, its files.
pub fn router(studio: Arc<Studio>) -> Router {
	Router::new().route("/config.json", get(config)).fallback(serve).with_state(studio)
}

async fn config(State(studio): State<Arc<Studio>>) -> impl IntoResponse {
	Json(json!({ "chain": studio.chain }))
}

async fn serve(State(studio): State<Arc<Studio>>, uri: Uri) -> Response {
	let path = uri.path();
	let is_page = Path::new(path).extension().is_none();
	let file = match studio.file(path) {
		Some(file) => file,
		None if is_page => studio.dir.join("index.html"),
		None => return (StatusCode::NOT_FOUND, format!("no such file: {path}")).into_response(),
	};
	// The server's tokio has no `fs`: read on the blocking pool, as `tokio::fs` would.
	let read = {
		let file = file.clone();
		tokio::task::spawn_blocking(move || std::fs::read(file)).await
	};
	let bytes: Vec<u8> = match read.map_err(std::io::Error::other).and_then(|r| r) {
		Ok(bytes) => bytes,
		Err(error) => {
			return (StatusCode::INTERNAL_SERVER_ERROR, format!("reading {path}: {error}"))
				.into_response()
		},
	};
	// Vite names every asset by its content's hash, so those never change; the page does.
	let cache = if path.starts_with("/assets/") {
		"public, max-age=31536000, immutable"
	} else {
		"no-cache"
	};
	([(header::CONTENT_TYPE, content_type(&file)), (header::CACHE_CONTROL, cache)], bytes)
		.into_response()
}

/// The media type of a file Vite emits, by its extension.
fn content_type(file: &Path) -> &'static str {
	match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
		"html" => "text/html; charset=utf-8",
		"js" | "mjs" => "text/javascript; charset=utf-8",
		"css" => "text/css; charset=utf-8",
		"json" | "map" => "application/json",
		"svg" => "image/svg+xml",
		"png" => "image/png",
		"ico" => "image/x-icon",
		"wasm" => "application/wasm",
		"woff2" => "font/woff2",
		"txt" => "text/plain; charset=utf-8",
		_ => "application/octet-stream",
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	fn build() -> (tempfile::TempDir, Studio) {
		let dir = tempfile::tempdir().unwrap();
		std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
		std::fs::create_dir(dir.path().join("assets")).unwrap();
		std::fs::write(dir.path().join("assets/app-1a2b.js"), "export {}").unwrap();
		let studio = Studio::new(dir.path().to_path_buf(), None).unwrap();
		(dir, studio)
	}

	#[test]
	fn a_build_without_its_page_is_refused_with_the_fix() {
		let dir = tempfile::tempdir().unwrap();
		let error = Studio::new(dir.path().to_path_buf(), None).err().unwrap();
		assert!(error.contains("npm run build"), "{error}");
	}

	#[test]
	fn only_files_inside_the_build_are_served() {
		let (dir, studio) = build();
		assert_eq!(studio.file("/assets/app-1a2b.js"), Some(dir.path().join("assets/app-1a2b.js")));
		assert_eq!(studio.file("/index.html"), Some(dir.path().join("index.html")));
		assert_eq!(studio.file("/assets/../index.html"), None);
		assert_eq!(studio.file("/../../etc/passwd"), None);
		assert_eq!(studio.file("/assets"), None, "a folder is not a file");
		assert_eq!(studio.file("/missing.js"), None);
	}

	#[test]
	fn types_follow_the_extension() {
		assert_eq!(content_type(Path::new("a/index.html")), "text/html; charset=utf-8");
		assert_eq!(content_type(Path::new("assets/x.js")), "text/javascript; charset=utf-8");
		assert_eq!(content_type(Path::new("assets/x.wasm")), "application/wasm");
		assert_eq!(content_type(Path::new("blob")), "application/octet-stream");
	}
}
