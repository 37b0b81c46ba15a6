//! MinHash signatures over word 3-shingles: the estimated Jaccard similarity of two texts'
//! shingle sets is the fraction of signature slots where they agree.

/// Hash functions per signature.
pub const SLOTS: usize = 128;
/// Words per shingle.
const SHINGLE_WORDS: usize = 3;

/// A text's MinHash signature.
pub type Signature = [u64; SLOTS];

/// FNV-1a: stable across platforms and Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
	bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
		(hash ^ *byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
	})
}

/// splitmix64, to derive each slot's hash from one shingle hash.
fn mix(mut x: u64) -> u64 {
	x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
	x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
	x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
	x ^ (x >> 31)
}

/// The signature of `text`: words are lower-cased runs of alphanumerics, so punctuation,
/// case and spacing do not make a copy look new.
pub fn signature(text: &str) -> Signature {
	let words: Vec<String> = text
		.split(|c: char| !c.is_alphanumeric())
		.filter(|w| !w.is_empty())
		.map(str::to_lowercase)
		.collect();
	let mut signature = [u64::MAX; SLOTS];
	let shingles = words.windows(SHINGLE_WORDS.min(words.len().max(1)));
	for shingle in shingles {
		let base = fnv1a(shingle.join(" ").as_bytes());
		for (slot, minimum) in signature.iter_mut().enumerate() {
			let hashed = mix(base ^ mix(slot as u64));
			if hashed < *minimum {
				*minimum = hashed;
			}
		}
	}
	signature
}

/// The estimated Jaccard similarity of the texts behind two signatures.
pub fn similarity(a: &Signature, b: &Signature) -> f64 {
	let agree = a.iter().zip(b.iter()).filter(|(x, y)| x == y && **x != u64::MAX).count();
	agree as f64 / SLOTS as f64
}
