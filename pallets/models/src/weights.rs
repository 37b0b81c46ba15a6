//! Weight functions for `pallet_models`.
//!
//! `scripts/benchmark-pallets.sh pallet_models` measures [`crate::benchmarking`] and writes the
//! measured `SubstrateWeight` into this file, in the same template as the other pallets. Until
//! that has run, this file holds only the trait and the zero weights of unit-test mocks, and
//! the runtime does not include the pallet: no call is ever charged a weight written by hand.

#![allow(missing_docs)]

use crate::frame_support::weights::Weight;

/// Weight functions needed for `pallet_models`.
pub trait WeightInfo {
	fn register_model(w: u32) -> Weight;
	fn retire_model() -> Weight;
	fn create_job(d: u32) -> Weight;
	fn cancel_job() -> Weight;
	fn bond() -> Weight;
	fn unbond() -> Weight;
	fn claim() -> Weight;
	fn extend() -> Weight;
	fn publish_adapter(b: u32) -> Weight;
	fn commit(s: u32) -> Weight;
	fn set_fee_split() -> Weight;
	fn expire_leases(n: u32) -> Weight;
	fn log_accepted() -> Weight;
}

/// For unit-test mocks, which do not meter weight.
impl WeightInfo for () {
	fn register_model(_: u32) -> Weight {
		Weight::zero()
	}
	fn retire_model() -> Weight {
		Weight::zero()
	}
	fn create_job(_: u32) -> Weight {
		Weight::zero()
	}
	fn cancel_job() -> Weight {
		Weight::zero()
	}
	fn bond() -> Weight {
		Weight::zero()
	}
	fn unbond() -> Weight {
		Weight::zero()
	}
	fn claim() -> Weight {
		Weight::zero()
	}
	fn extend() -> Weight {
		Weight::zero()
	}
	fn publish_adapter(_: u32) -> Weight {
		Weight::zero()
	}
	fn commit(_: u32) -> Weight {
		Weight::zero()
	}
	fn set_fee_split() -> Weight {
		Weight::zero()
	}
	fn expire_leases(_: u32) -> Weight {
		Weight::zero()
	}
	fn log_accepted() -> Weight {
		Weight::zero()
	}
}
