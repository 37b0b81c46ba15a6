//! The fixed-depth, append-only Merkle tree that fixes a job's training set.
//!
//! Every datanet keeps a log of its accepted contributions. Its root commits to the first `n`
//! entries of the log, for any `n`, so a job records `n` and the root when it is created, and
//! anyone can later recompute that root from the log alone.
//!
//! - A leaf is `blake2_256("prv/leaf" ‖ id ‖ content)`: the contribution id as 8 bytes
//!   little-endian, then the 32-byte blake2-256 of the contribution's bytes.
//! - An inner node is `blake2_256("prv/node" ‖ left ‖ right)`.
//! - The tree has [`DEPTH`] levels. Positions past `n` hold the empty subtree of their level:
//!   `zero(0) = [0; 32]`, `zero(h + 1) = node(zero(h), zero(h))`.
//! - A job over several datanets commits to them all with
//!   `blake2_256("prv/set" ‖ SCALE(parts))`, `parts` being `(datanet, n, root)` in
//!   increasing datanet order ([`set_root`]).
//!
//! Appending costs [`DEPTH`] hashes at most and keeps [`DEPTH`] nodes (the *frontier*: the
//! last left sibling on each level), as in the Ethereum deposit contract.

use crate::types::{ContentHash, Hash32, SetPart};
use alloc::vec::Vec;
use codec::Encode;
use pallet_datanets::ContributionId;
use polkadot_sdk::sp_io::hashing::blake2_256;

/// Levels of the tree: room for 2³² contributions per datanet.
pub const DEPTH: usize = 32;

/// The last left sibling on each level, enough to append and to take the root.
pub type Frontier = [Hash32; DEPTH];

fn tagged(tag: &[u8], parts: &[&[u8]]) -> Hash32 {
	let mut bytes = Vec::with_capacity(tag.len() + parts.iter().map(|p| p.len()).sum::<usize>());
	bytes.extend_from_slice(tag);
	for part in parts {
		bytes.extend_from_slice(part);
	}
	blake2_256(&bytes)
}

/// The leaf of contribution `id` with content hash `content`.
pub fn leaf(id: ContributionId, content: &ContentHash) -> Hash32 {
	tagged(b"prv/leaf", &[&id.to_le_bytes(), content])
}

/// The parent of `left` and `right`.
pub fn node(left: &Hash32, right: &Hash32) -> Hash32 {
	tagged(b"prv/node", &[left, right])
}

/// The root of an empty subtree of height `height`.
pub fn zero(height: usize) -> Hash32 {
	let mut hash = [0u8; 32];
	for _ in 0..height {
		hash = node(&hash, &hash);
	}
	hash
}

/// The roots of the empty subtrees of heights `0..DEPTH`.
fn zeros() -> [Hash32; DEPTH] {
	let mut zeros = [[0u8; 32]; DEPTH];
	for height in 1..DEPTH {
		zeros[height] = node(&zeros[height - 1], &zeros[height - 1]);
	}
	zeros
}

/// Adds `leaf` at position `len` of a tree whose frontier is `frontier`.
pub fn append(frontier: &mut Frontier, len: u64, leaf: Hash32) {
	let mut hash = leaf;
	let mut size = len;
	for sibling in frontier.iter_mut() {
		if size & 1 == 0 {
			*sibling = hash;
			return;
		}
		hash = node(sibling, &hash);
		size >>= 1;
	}
}

/// The root over the first `len` leaves, given the frontier after appending them.
pub fn root(frontier: &Frontier, len: u64) -> Hash32 {
	let zeros = zeros();
	let mut hash = [0u8; 32];
	let mut size = len;
	for height in 0..DEPTH {
		hash = if size & 1 == 1 {
			node(&frontier[height], &hash)
		} else {
			node(&hash, &zeros[height])
		};
		size >>= 1;
	}
	hash
}

/// The root over `leaves`, computed from scratch.
pub fn root_of(leaves: impl IntoIterator<Item = Hash32>) -> Hash32 {
	let mut frontier = [[0u8; 32]; DEPTH];
	let mut len = 0u64;
	for leaf in leaves {
		append(&mut frontier, len, leaf);
		len += 1;
	}
	root(&frontier, len)
}

/// Every level of the tree over `leaves` below the root, from the leaves up; each level stops
/// at its last node over a leaf (the rest are empty subtrees). Built once, it gives every
/// leaf's proof in [`DEPTH`] steps ([`proof_from`]).
pub fn levels(leaves: &[Hash32]) -> Vec<Vec<Hash32>> {
	let mut levels = Vec::with_capacity(DEPTH);
	let mut level = leaves.to_vec();
	for zero in zeros() {
		let next =
			level.chunks(2).map(|pair| node(&pair[0], pair.get(1).unwrap_or(&zero))).collect();
		levels.push(core::mem::replace(&mut level, next));
	}
	levels
}

/// The siblings from leaf `index` up to the root, read from the tree's [`levels`].
pub fn proof_from(levels: &[Vec<Hash32>], index: u64) -> Vec<Hash32> {
	let zeros = zeros();
	let mut position = index as usize;
	let mut siblings = Vec::with_capacity(DEPTH);
	for (height, level) in levels.iter().enumerate() {
		siblings.push(level.get(position ^ 1).copied().unwrap_or(zeros[height]));
		position /= 2;
	}
	siblings
}

/// The siblings from leaf `index` up to the root, over `leaves` (zero subtrees past the end).
pub fn proof(leaves: &[Hash32], index: u64) -> Vec<Hash32> {
	proof_from(&levels(leaves), index)
}

/// The root that `leaf` at `index` and its `siblings` lead to.
pub fn fold_proof(leaf: Hash32, index: u64, siblings: &[Hash32]) -> Hash32 {
	let mut hash = leaf;
	for (height, sibling) in siblings.iter().enumerate() {
		hash = if (index >> height) & 1 == 0 { node(&hash, sibling) } else { node(sibling, &hash) };
	}
	hash
}

/// The root of a whole training set: its parts, in increasing datanet order.
pub fn set_root(parts: &[SetPart]) -> Hash32 {
	tagged(b"prv/set", &[&parts.encode()])
}

/// The leaf of a contributor share: contribution `id` weighs `weight` (tokens, until
/// attribution lands).
pub fn share_leaf(id: ContributionId, weight: u64) -> Hash32 {
	tagged(b"prv/share", &[&id.to_le_bytes(), &weight.to_le_bytes()])
}

#[cfg(test)]
mod tests {
	use super::*;

	fn leaves(n: u64) -> Vec<Hash32> {
		(0..n).map(|i| leaf(i * 7, &blake2_256(&i.to_le_bytes()))).collect()
	}

	/// The naive definition: a full binary tree of `DEPTH` levels, zero-padded.
	fn naive_root(leaves: &[Hash32]) -> Hash32 {
		let mut level = leaves.to_vec();
		for height in 0..DEPTH {
			let zero = zero(height);
			level = if level.is_empty() {
				Vec::new()
			} else {
				level.chunks(2).map(|pair| node(&pair[0], pair.get(1).unwrap_or(&zero))).collect()
			};
		}
		level.first().copied().unwrap_or(zero(DEPTH))
	}

	#[test]
	fn the_incremental_root_is_the_padded_tree_root_at_every_length() {
		let all = leaves(37);
		let mut frontier = [[0u8; 32]; DEPTH];
		assert_eq!(root(&frontier, 0), zero(DEPTH));
		for (i, leaf) in all.iter().enumerate() {
			append(&mut frontier, i as u64, *leaf);
			assert_eq!(root(&frontier, i as u64 + 1), naive_root(&all[..=i]), "length {}", i + 1);
		}
	}

	#[test]
	fn proofs_fold_to_the_root_and_fail_for_another_leaf_or_position() {
		let all = leaves(13);
		let expected = root_of(all.iter().copied());
		for (i, leaf) in all.iter().enumerate() {
			let siblings = proof(&all, i as u64);
			assert_eq!(siblings.len(), DEPTH);
			assert_eq!(fold_proof(*leaf, i as u64, &siblings), expected);
			assert_ne!(fold_proof(*leaf, i as u64 ^ 1, &siblings), expected);
			assert_ne!(fold_proof(all[(i + 1) % all.len()], i as u64, &siblings), expected);
		}
	}

	#[test]
	fn leaves_and_shares_are_domain_separated() {
		let content = [3u8; 32];
		assert_ne!(leaf(1, &content), share_leaf(1, u64::from_le_bytes([3; 8])));
		assert_ne!(leaf(1, &content), leaf(2, &content));
		assert_ne!(node(&[1; 32], &[2; 32]), node(&[2; 32], &[1; 32]));
	}
}
