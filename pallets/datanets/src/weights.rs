//! Weights for `pallet_datanets`.
//!
//! PLACEHOLDER until `scripts/benchmark-pallets.sh` generates this file from the benchmarks in
//! `benchmarking.rs`. The pallet is not in the runtime until then.

#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use crate::frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_datanets`.
pub trait WeightInfo {
	fn create(metadata_bytes: u32, ) -> Weight;
	fn update_metadata(metadata_bytes: u32, ) -> Weight;
	fn update_rules() -> Weight;
	fn pause() -> Weight;
	fn resume() -> Weight;
	fn close() -> Weight;
	fn submit(bytes: u32, ) -> Weight;
}

/// Stands in until the benchmarks have run; see the module docs.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T> WeightInfo for SubstrateWeight<T> {
	fn create(n: u32, ) -> Weight { <() as WeightInfo>::create(n) }
	fn update_metadata(n: u32, ) -> Weight { <() as WeightInfo>::update_metadata(n) }
	fn update_rules() -> Weight { <() as WeightInfo>::update_rules() }
	fn pause() -> Weight { <() as WeightInfo>::pause() }
	fn resume() -> Weight { <() as WeightInfo>::resume() }
	fn close() -> Weight { <() as WeightInfo>::close() }
	fn submit(n: u32, ) -> Weight { <() as WeightInfo>::submit(n) }
}

/// For tests only: every call weighs nothing.
impl WeightInfo for () {
	fn create(_: u32, ) -> Weight { Weight::zero() }
	fn update_metadata(_: u32, ) -> Weight { Weight::zero() }
	fn update_rules() -> Weight { Weight::zero() }
	fn pause() -> Weight { Weight::zero() }
	fn resume() -> Weight { Weight::zero() }
	fn close() -> Weight { Weight::zero() }
	fn submit(_: u32, ) -> Weight { Weight::zero() }
}
