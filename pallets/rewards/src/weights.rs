//! Placeholder until `scripts/benchmark-pallets.sh pallet_rewards` writes the measured weights.

#![allow(missing_docs)]
use crate::frame_support::weights::Weight;

pub trait WeightInfo {
	fn on_initialize_idle() -> Weight;
	fn open_pots(n: u32, ) -> Weight;
	fn pay_contributors(n: u32, ) -> Weight;
	fn pay_validators(n: u32, ) -> Weight;
	fn close_pots(n: u32, ) -> Weight;
	fn record_verdict(v: u32, ) -> Weight;
	fn claim() -> Weight;
	fn fund() -> Weight;
	fn set_params() -> Weight;
}

impl WeightInfo for () {
	fn on_initialize_idle() -> Weight { Weight::zero() }
	fn open_pots(_: u32, ) -> Weight { Weight::zero() }
	fn pay_contributors(_: u32, ) -> Weight { Weight::zero() }
	fn pay_validators(_: u32, ) -> Weight { Weight::zero() }
	fn close_pots(_: u32, ) -> Weight { Weight::zero() }
	fn record_verdict(_: u32, ) -> Weight { Weight::zero() }
	fn claim() -> Weight { Weight::zero() }
	fn fund() -> Weight { Weight::zero() }
	fn set_params() -> Weight { Weight::zero() }
}

pub struct SubstrateWeight<T>(core::marker::PhantomData<T>);
impl<T> WeightInfo for SubstrateWeight<T> {
	fn on_initialize_idle() -> Weight { Weight::zero() }
	fn open_pots(_: u32, ) -> Weight { Weight::zero() }
	fn pay_contributors(_: u32, ) -> Weight { Weight::zero() }
	fn pay_validators(_: u32, ) -> Weight { Weight::zero() }
	fn close_pots(_: u32, ) -> Weight { Weight::zero() }
	fn record_verdict(_: u32, ) -> Weight { Weight::zero() }
	fn claim() -> Weight { Weight::zero() }
	fn fund() -> Weight { Weight::zero() }
	fn set_params() -> Weight { Weight::zero() }
}
