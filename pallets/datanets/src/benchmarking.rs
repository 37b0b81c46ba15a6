//! Benchmarks for `pallet_datanets`, run by `scripts/benchmark-pallets.sh` to produce
//! `weights.rs`. Each measures the worst case of its call.

use crate::*;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use polkadot_sdk::{frame_benchmarking, frame_system as system};
use sp_runtime::traits::Bounded;

fn funded_caller<T: Config>() -> T::AccountId {
	let caller: T::AccountId = whitelisted_caller();
	T::Currency::set_balance(&caller, BalanceOf::<T>::max_value() / 4u32.into());
	caller
}

/// Metadata of `bytes` total bytes, spread over name, summary and tags up to their bounds.
fn metadata_of_size<T: Config>(bytes: u32) -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
	let name_len = bytes.clamp(1, T::MaxNameLen::get());
	let summary_len = (bytes - name_len).min(T::MaxSummaryLen::get());
	let mut left = bytes - name_len - summary_len;
	let mut tags = Vec::new();
	while left > 0 && (tags.len() as u32) < T::MaxTags::get() {
		let len = left.min(T::MaxTagLen::get());
		tags.push(vec![b't'; len as usize]);
		left -= len;
	}
	(vec![b'n'; name_len as usize], vec![b's'; summary_len as usize], tags)
}

fn max_metadata_bytes<T: Config>() -> u32 {
	T::MaxNameLen::get() + T::MaxSummaryLen::get() + T::MaxTags::get() * T::MaxTagLen::get()
}

/// A text datanet whose caps admit the runtime's largest file.
fn text_datanet<T: Config>(owner: &T::AccountId) -> DatanetId {
	let (name, summary, tags) = metadata_of_size::<T>(max_metadata_bytes::<T>());
	let metadata = Pallet::<T>::bounded_metadata(name, summary, tags).expect("within bounds");
	let caps = Caps { max_file_bytes: T::MaxFileBytes::get(), daily_bytes: u64::MAX };
	let formats = FormatSet::of(&Format::of_kind(DataKind::Text).collect::<Vec<_>>());
	Pallet::<T>::do_create(owner.clone(), metadata, DataKind::Text, formats, caps)
		.expect("funded owner")
}

#[benchmarks]
mod benchmarks {
	use super::*;

	#[benchmark]
	fn create(n: Linear<1, { max_metadata_bytes::<T>() }>) {
		let caller = funded_caller::<T>();
		let (name, summary, tags) = metadata_of_size::<T>(n);
		let formats = FormatSet::of(&Format::of_kind(DataKind::Text).collect::<Vec<_>>());
		let caps = Caps { max_file_bytes: T::MaxFileBytes::get(), daily_bytes: u64::MAX };

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), name, summary, tags, DataKind::Text, formats, caps);

		assert!(Datanets::<T>::contains_key(0));
	}

	#[benchmark]
	fn update_metadata(n: Linear<1, { max_metadata_bytes::<T>() }>) {
		let caller = funded_caller::<T>();
		let datanet = text_datanet::<T>(&caller);
		let (name, summary, tags) = metadata_of_size::<T>(n);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), datanet, name, summary, tags);

		assert_eq!(
			Datanets::<T>::get(datanet).unwrap().metadata.name.len() as u32,
			n.clamp(1, T::MaxNameLen::get())
		);
	}

	#[benchmark]
	fn update_rules() {
		let caller = funded_caller::<T>();
		let datanet = text_datanet::<T>(&caller);
		let caps = Caps { max_file_bytes: 1024, daily_bytes: 4096 };

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), datanet, FormatSet::of(&[Format::Csv]), caps);

		assert_eq!(Datanets::<T>::get(datanet).unwrap().caps, caps);
	}

	#[benchmark]
	fn pause() {
		let caller = funded_caller::<T>();
		let datanet = text_datanet::<T>(&caller);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), datanet);

		assert_eq!(Datanets::<T>::get(datanet).unwrap().status, DatanetStatus::Paused);
	}

	#[benchmark]
	fn resume() {
		let caller = funded_caller::<T>();
		let datanet = text_datanet::<T>(&caller);
		Pallet::<T>::do_set_status(&caller, datanet, DatanetStatus::Paused).unwrap();

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), datanet);

		assert_eq!(Datanets::<T>::get(datanet).unwrap().status, DatanetStatus::Active);
	}

	#[benchmark]
	fn close() {
		let caller = funded_caller::<T>();
		let datanet = text_datanet::<T>(&caller);

		#[extrinsic_call]
		_(RawOrigin::Signed(caller), datanet);

		assert_eq!(Datanets::<T>::get(datanet).unwrap().status, DatanetStatus::Closed);
	}

	/// The worst case is text: the UTF-8 check and the jsonl/csv structure checks read every
	/// byte, on top of hashing.
	#[benchmark]
	fn submit(n: Linear<1, { T::MaxFileBytes::get() }>) {
		let owner = funded_caller::<T>();
		let contributor: T::AccountId = account("contributor", 0, 0);
		let datanet = text_datanet::<T>(&owner);
		let mut data = vec![b'a'; n as usize];
		data[0] = b'#';
		system::Pallet::<T>::set_extrinsic_index(1);

		#[extrinsic_call]
		_(RawOrigin::Signed(contributor), datanet, data);

		assert!(Contributions::<T>::contains_key(0));
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::ExtBuilder::build(), crate::mock::Test);
}
