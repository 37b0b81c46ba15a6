//! What `provenant verify` computes for a job's training set, timed in-process: one inclusion
//! proof folded to its datanet's root and the set's root checked, and a whole set of N
//! contributions rebuilt from its log entries (leaves, tree levels, every member's proof).
//! The node queries verify also makes (a storage read per member) are not included.
//!
//! Run with `scripts/bench-verify.sh [N]` (default 1,000).

use std::time::Instant;

use pallet_models::{merkle, InclusionProof, LogEntry, SetMember, SetPart, TrainingSet};

fn main() {
	let n: u64 = std::env::args().nth(1).map_or(1_000, |n| n.parse().expect("a set size"));
	let entries: Vec<LogEntry> = (0..n)
		.map(|id| LogEntry { contribution: id, content: merkle::leaf(id, &[9; 32]) })
		.collect();
	let leaves: Vec<_> = entries.iter().map(LogEntry::leaf).collect();
	let root = merkle::root_of(leaves.iter().copied());
	let parts = vec![SetPart { datanet: 0, count: n, root }];
	let training = TrainingSet {
		parts: parts.clone().try_into().expect("one part"),
		root: merkle::set_root(&parts),
		size: n,
	};
	let levels = merkle::levels(&leaves);
	let index = n / 2;
	let proof = InclusionProof {
		member: SetMember { datanet: 0, index, entry: entries[index as usize] },
		siblings: merkle::proof_from(&levels, index),
	};

	let rounds = 20_000;
	let started = Instant::now();
	for _ in 0..rounds {
		assert!(std::hint::black_box(&proof).verify(&training));
	}
	let per_proof = started.elapsed().as_secs_f64() / f64::from(rounds);

	let rounds = 20;
	let started = Instant::now();
	for _ in 0..rounds {
		let leaves: Vec<_> = std::hint::black_box(&entries).iter().map(LogEntry::leaf).collect();
		assert_eq!(merkle::root_of(leaves.iter().copied()), root);
		let levels = merkle::levels(&leaves);
		for (position, leaf) in leaves.iter().enumerate() {
			let siblings = merkle::proof_from(&levels, position as u64);
			assert_eq!(merkle::fold_proof(*leaf, position as u64, &siblings), root);
		}
		assert_eq!(merkle::set_root(&parts), training.root);
	}
	let whole_set = started.elapsed().as_secs_f64() / f64::from(rounds);

	println!("one inclusion proof (depth {}): {:.1} µs", merkle::DEPTH, per_proof * 1e6);
	println!(
		"whole set of {n}: {:.2} ms ({:.1} µs per member)",
		whole_set * 1e3,
		whole_set * 1e6 / n as f64
	);
}
