//! Weight functions for `pallet_inference`. `scripts/benchmark-pallets.sh pallet_inference`
//! replaces this file with the measured weights; never edit by hand.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use crate::frame_support::{traits::Get, weights::{Weight, constants::RocksDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_inference`.
pub trait WeightInfo {
	fn set_price() -> Weight;
	fn open() -> Weight;
	fn top_up() -> Weight;
	fn settle(s: u32, ) -> Weight;
	fn close() -> Weight;
	fn set_operator_share() -> Weight;
}

impl WeightInfo for () {
	fn set_price() -> Weight { Weight::zero() }
	fn open() -> Weight { Weight::zero() }
	fn top_up() -> Weight { Weight::zero() }
	fn settle(_s: u32, ) -> Weight { Weight::zero() }
	fn close() -> Weight { Weight::zero() }
	fn set_operator_share() -> Weight { Weight::zero() }
}
