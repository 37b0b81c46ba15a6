//! Suffix arrays over token ids by SA-IS (Nong, Zhang and Chan, 2009), in linear time and with
//! no memory beyond the text and the array but one bucket table the size of the vocabulary:
//! a corpus of n tokens takes 8n bytes to index. Each suffix's type is kept in its token's
//! high bit while the array is built (token ids stay below 2³¹), and the recursion's bucket
//! table in the array's unused slots when it fits.

/// An empty slot while suffixes are induced.
const EMPTY: u32 = u32::MAX;
/// Set on a token while its suffix is S-type: smaller than the suffix after it.
const S_TYPE: u32 = 1 << 31;

fn token(text: &[u32], i: usize) -> usize {
	(text[i] & !S_TYPE) as usize
}

fn s_type(text: &[u32], i: usize) -> bool {
	text[i] & S_TYPE != 0
}

/// A leftmost S-type position: S-type after an L-type one.
fn lms(text: &[u32], i: usize) -> bool {
	i > 0 && s_type(text, i) && !s_type(text, i - 1)
}

/// Marks every S-type suffix, with a sentinel after the text smaller than every token: the
/// last suffix is larger than the empty one after it, so L-type.
fn mark_types(text: &mut [u32]) {
	let mut next_is_s = false;
	for i in (0..text.len().saturating_sub(1)).rev() {
		let (c, next) = (text[i], text[i + 1] & !S_TYPE);
		let s = c < next || (c == next && next_is_s);
		if s {
			text[i] |= S_TYPE;
		}
		next_is_s = s;
	}
}

/// Fills `buckets` with the first slot of each token's bucket, or with one past its last.
fn fill_buckets(text: &[u32], buckets: &mut [u32], ends: bool) {
	buckets.fill(0);
	for i in 0..text.len() {
		buckets[token(text, i)] += 1;
	}
	let mut sum = 0;
	for bucket in buckets.iter_mut() {
		let count = *bucket;
		sum += count;
		*bucket = if ends { sum } else { sum - count };
	}
}

/// Sorts the L-type suffixes from the LMS ones in place, then the S-type ones from those.
fn induce(text: &[u32], sa: &mut [u32], buckets: &mut [u32]) {
	let n = text.len();
	fill_buckets(text, buckets, false);
	// The suffix before the sentinel comes first in its bucket.
	let last = token(text, n - 1);
	sa[buckets[last] as usize] = (n - 1) as u32;
	buckets[last] += 1;
	for i in 0..n {
		let j = sa[i];
		if j != EMPTY && j > 0 && !s_type(text, j as usize - 1) {
			let c = token(text, j as usize - 1);
			sa[buckets[c] as usize] = j - 1;
			buckets[c] += 1;
		}
	}
	fill_buckets(text, buckets, true);
	for i in (0..n).rev() {
		let j = sa[i];
		if j != EMPTY && j > 0 && s_type(text, j as usize - 1) {
			let c = token(text, j as usize - 1);
			buckets[c] -= 1;
			sa[buckets[c] as usize] = j - 1;
		}
	}
}

/// Whether the LMS substrings at `a` and `b` are equal: the same tokens and types up to and
/// including the next LMS position.
fn lms_substrings_equal(text: &[u32], a: usize, b: usize) -> bool {
	let n = text.len();
	for d in 0.. {
		let (x, y) = (a + d, b + d);
		if x == n || y == n {
			// Only the sentinel ends a substring without an LMS position, and it is unique.
			return false;
		}
		// A token and its type bit compare at once.
		if text[x] != text[y] {
			return false;
		}
		if d > 0 && (lms(text, x) || lms(text, y)) {
			return lms(text, x) && lms(text, y);
		}
	}
	unreachable!("the loop returns by the end of the text")
}

/// Writes the suffix array of `text` into `sa`. Tokens are below `buckets.len()` and 2³¹;
/// `text` is returned as it came.
fn sais(text: &mut [u32], sa: &mut [u32], buckets: &mut [u32]) {
	let n = text.len();
	match n {
		0 => return,
		1 => {
			sa[0] = 0;
			return;
		},
		_ => {},
	}
	mark_types(text);

	// 1. LMS positions at their buckets' ends, in text order, then induced: this sorts the
	// LMS substrings.
	sa.fill(EMPTY);
	fill_buckets(text, buckets, true);
	for i in (1..n).filter(|&i| lms(text, i)) {
		let c = token(text, i);
		buckets[c] -= 1;
		sa[buckets[c] as usize] = i as u32;
	}
	induce(text, sa, buckets);

	// 2. The sorted LMS positions to the front, named by substring, and the names in text
	// order at the back: the reduced text. LMS positions are at least two apart, so
	// `n_lms + i / 2` gives each its own slot.
	let mut n_lms = 0;
	for i in 0..n {
		if lms(text, sa[i] as usize) {
			sa[n_lms] = sa[i];
			n_lms += 1;
		}
	}
	sa[n_lms..].fill(EMPTY);
	let mut names = 0u32;
	let mut previous: Option<usize> = None;
	for i in 0..n_lms {
		let position = sa[i] as usize;
		if previous.is_none_or(|p| !lms_substrings_equal(text, p, position)) {
			names += 1;
			previous = Some(position);
		}
		sa[n_lms + position / 2] = names - 1;
	}
	let mut back = n;
	for i in (n_lms..n).rev() {
		if sa[i] != EMPTY {
			back -= 1;
			sa[back] = sa[i];
		}
	}

	// 3. The reduced text's suffix array, by recursion while names repeat. Its bucket table
	// goes in the slots between the two halves when they hold it.
	{
		let (front, reduced) = sa.split_at_mut(n - n_lms);
		let (order, free) = front.split_at_mut(n_lms);
		if (names as usize) < n_lms {
			let names = names as usize;
			if free.len() >= names {
				sais(reduced, order, &mut free[..names]);
			} else {
				sais(reduced, order, &mut vec![0; names]);
			}
		} else {
			for (i, &name) in reduced.iter().enumerate() {
				order[name as usize] = i as u32;
			}
		}
		// The LMS positions in text order, where the names were.
		for (slot, i) in reduced.iter_mut().zip((1..n).filter(|&i| lms(text, i))) {
			*slot = i as u32;
		}
	}
	for i in 0..n_lms {
		sa[i] = sa[n - n_lms + sa[i] as usize];
	}
	sa[n_lms..].fill(EMPTY);

	// 4. The LMS suffixes, now sorted, at their buckets' ends, and every suffix induced from
	// them. Each sorted LMS suffix's final slot is at or after its index, so going backwards
	// never overwrites one not yet moved.
	fill_buckets(text, buckets, true);
	for i in (0..n_lms).rev() {
		let position = sa[i];
		sa[i] = EMPTY;
		let c = token(text, position as usize);
		buckets[c] -= 1;
		sa[buckets[c] as usize] = position;
	}
	induce(text, sa, buckets);
	for c in text.iter_mut() {
		*c &= !S_TYPE;
	}
}

/// The suffix array of `text`: the start of every suffix, in the suffixes' order, a suffix
/// that is a prefix of another first. Tokens must be below `alphabet`, which is at most 2³¹,
/// and the text shorter than `u32::MAX`. `text` is borrowed mutably to hold each suffix's
/// type while the array is built, and given back unchanged.
pub fn suffix_array(text: &mut [u32], alphabet: usize) -> Vec<u32> {
	assert!(text.len() < EMPTY as usize, "a text of {} tokens is too long to index", text.len());
	assert!(alphabet <= S_TYPE as usize, "token ids must stay below 2^31");
	debug_assert!(text.iter().all(|&c| (c as usize) < alphabet));
	let mut sa = vec![0; text.len()];
	sais(text, &mut sa, &mut vec![0; alphabet]);
	sa
}

#[cfg(test)]
mod tests {
	use super::*;
	use crate::rng::Rng;

	fn by_sorting(text: &[u32]) -> Vec<u32> {
		let mut sa: Vec<u32> = (0..text.len() as u32).collect();
		sa.sort_by(|&a, &b| text[a as usize..].cmp(&text[b as usize..]));
		sa
	}

	#[test]
	fn matches_sorting_the_suffixes() {
		let check = |text: &[u32], alphabet: usize| {
			let mut copy = text.to_vec();
			let sa = suffix_array(&mut copy, alphabet);
			assert_eq!(copy, text, "the text comes back unchanged");
			sa
		};
		let banana: Vec<u32> = b"banana".iter().map(|&c| c as u32).collect();
		assert_eq!(check(&banana, 256), [5, 3, 1, 0, 4, 2]);
		assert_eq!(check(&[], 1), Vec::<u32>::new());
		assert_eq!(check(&[7], 8), [0]);
		assert_eq!(check(&[3, 3, 3, 3], 4), [3, 2, 1, 0]);
		let mut rng = Rng::new(7);
		for round in 0..400 {
			let len = 1 + (rng.next_u64() % 300) as usize;
			// Small alphabets give long repeats and deep recursion; large ones, sparse buckets.
			let alphabet = [2, 3, 5, 50, 70_000][round % 5];
			let text: Vec<u32> =
				(0..len).map(|_| (rng.next_u64() % alphabet as u64) as u32).collect();
			assert_eq!(check(&text, alphabet), by_sorting(&text), "{text:?}");
		}
		// Periodic texts, the classic hard case.
		for period in 1..6u32 {
			let text: Vec<u32> = (0..200).map(|i| i % period).collect();
			assert_eq!(check(&text, 6), by_sorting(&text), "period {period}");
		}
	}
}
