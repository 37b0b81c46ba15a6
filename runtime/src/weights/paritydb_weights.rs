//! THIS FILE WAS AUTO-GENERATED USING THE SUBSTRATE BENCHMARK CLI VERSION 64.0.0
//! DATE: 2026-11-24 (Y/M/D)
//! HOSTNAME: `vm`, CPU: `Intel(R) Xeon(R) Processor`
//!
//! DATABASE: `ParityDb`, RUNTIME: `Provenant Development`
//! BLOCK-NUM: `Number(20)`
//! SKIP-WRITE: `false`, SKIP-READ: `false`, WARMUPS: `1`
//! STATE-VERSION: `V1`, STATE-CACHE-SIZE: ``
//! WEIGHT-PATH: `runtime/src/weights`
//! METRIC: `Average`, WEIGHT-MUL: `1.0`, WEIGHT-ADD: `0`

// Executed Command:
//   scripts/bench-node.sh's provenant-node
//   benchmark
//   storage
//   --dev
//   --database
//   paritydb
//   --base-path
//   /tmp/tmp.KB03xhKZXi
//   --state-version
//   1
//   --batch-size
//   1000
//   --weight-path
//   runtime/src/weights

/// Storage DB weights for the `Provenant Development` runtime and `ParityDb`.
pub mod constants {
	use polkadot_sdk::frame_support::parameter_types;
	use polkadot_sdk::frame_support::weights::constants;
	use polkadot_sdk::frame_support::weights::RuntimeDbWeight;

	parameter_types! {
		/// `ParityDB` can be enabled with a feature flag, but is still experimental. These weights
		/// are available for brave runtime engineers who may want to try this out as default.
		pub const ParityDbWeight: RuntimeDbWeight = RuntimeDbWeight {
			/// Time to read one storage item.
			/// Calculated by multiplying the *Average* of all values with `1.0` and adding `0`.
			///
			/// Stats nanoseconds:
			///   Min, Max: 506, 4_039_996
			///   Average:  3_380
			///   Median:   2_917
			///   Std-Dev:  31168.54
			///
			/// Percentiles nanoseconds:
			///   99th: 7_844
			///   95th: 3_873
			///   75th: 3_246
			read: 3_380 * constants::WEIGHT_REF_TIME_PER_NANOS,

			/// Time to write one storage item.
			/// Calculated by multiplying the *Average* of all values with `1.0` and adding `0`.
			///
			/// Stats nanoseconds:
			///   Min, Max: 6_689, 15_699
			///   Average:  8_307
			///   Median:   7_960
			///   Std-Dev:  2063.49
			///
			/// Percentiles nanoseconds:
			///   99th: 15_699
			///   95th: 15_699
			///   75th: 8_353
			write: 8_307 * constants::WEIGHT_REF_TIME_PER_NANOS,
		};
	}

	#[cfg(test)]
	mod test_db_weights {
		use super::constants::ParityDbWeight as W;
		use polkadot_sdk::frame_support::weights::constants;

		/// Checks that all weights exist and have sane values.
		// NOTE: If this test fails but you are sure that the generated values are fine,
		// you can delete it.
		#[test]
		fn bound() {
			// At least 1 µs.
			assert!(
				W::get().reads(1).ref_time() >= constants::WEIGHT_REF_TIME_PER_MICROS,
				"Read weight should be at least 1 µs."
			);
			assert!(
				W::get().writes(1).ref_time() >= constants::WEIGHT_REF_TIME_PER_MICROS,
				"Write weight should be at least 1 µs."
			);
			// At most 1 ms.
			assert!(
				W::get().reads(1).ref_time() <= constants::WEIGHT_REF_TIME_PER_MILLIS,
				"Read weight should be at most 1 ms."
			);
			assert!(
				W::get().writes(1).ref_time() <= constants::WEIGHT_REF_TIME_PER_MILLIS,
				"Write weight should be at most 1 ms."
			);
		}
	}
}
