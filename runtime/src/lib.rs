//! # Provenant runtime
//!
//! The FRAME runtime of Provenant, the chain where data earns from the models it trains.
//!
//! ## Overview
//!
//! The runtime assembles the standard pallets a solo chain needs (system, timestamp, Aura block
//! production, GRANDPA finality, balances, transaction payment, sudo and utility). Provenant's
//! own pallets (datanets, validation, rewards, models) are added beside them, each configured in
//! its own file under [`configs`].
//!
//! ## Compatibility
//!
//! Wallets must work unchanged: polkadot.js, its extension, polkadot-api and subxt sign for this
//! runtime with no custom types. The transaction extensions are therefore the standard set
//! ([`TxExtension`]), accounts are sr25519/ed25519/ecdsa `MultiSignature` accounts, and the
//! token (PRV, 12 decimals) is announced through the chain spec properties.
//!
//! ## Block size
//!
//! Data contributions carry their bytes inside the extrinsic, so a block must admit one
//! extrinsic of [`MAX_CONTRIBUTION_EXTRINSIC_BYTES`] in the normal dispatch class. See
//! [`configs::RuntimeBlockLength`].

#![cfg_attr(not(feature = "std"), no_std)]
// `#[frame_support::runtime]`, `impl_runtime_apis!` and the wasm-builder's include generate
// public items without docs; everything written by hand here is documented.
#![allow(missing_docs)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
pub mod configs;
pub mod genesis_config_presets;
pub mod weights;

use alloc::vec::Vec;
use polkadot_sdk::{
	frame_support::weights::{constants::WEIGHT_REF_TIME_PER_SECOND, Weight},
	sp_runtime::{
		generic, impl_opaque_keys,
		traits::{BlakeTwo256, IdentifyAccount, Verify},
		MultiAddress, MultiSignature, Perbill,
	},
	*,
};
use sp_version::{runtime_version, RuntimeVersion};

pub use polkadot_sdk::sp_consensus_aura::sr25519::AuthorityId as AuraId;

/// Opaque types. They let the node's CLI and service know the block format without knowing
/// the runtime's extrinsic type.
pub mod opaque {
	use super::*;
	use polkadot_sdk::sp_runtime::OpaqueExtrinsic;

	/// An opaque, SCALE-encoded extrinsic.
	pub type UncheckedExtrinsic = OpaqueExtrinsic;
	/// The block header type.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// The opaque block type.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// The opaque block identifier type.
	pub type BlockId = generic::BlockId<Block>;
	/// The hash type of opaque blocks.
	pub type Hash = <BlakeTwo256 as polkadot_sdk::sp_runtime::traits::Hash>::Output;

	impl_opaque_keys! {
		/// The session keys of a block-producing validator.
		pub struct SessionKeys {
			/// Aura block-production key.
			pub aura: Aura,
			/// GRANDPA finality key.
			pub grandpa: Grandpa,
		}
	}
}

/// The runtime's version. `spec_version` must be bumped whenever runtime logic changes.
#[runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("provenant"),
	impl_name: alloc::borrow::Cow::Borrowed("provenant-node"),
	authoring_version: 1,
	spec_version: 102,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 2,
	system_version: 1,
};

/// Target time between blocks. Aura's slot is this long; GRANDPA finalises a few blocks behind.
/// Four seconds with two seconds of block weight: half of each slot may go to executing the
/// block, and Aura gives its author two thirds of the slot to build it.
pub const MILLI_SECS_PER_BLOCK: u64 = 4000;
/// Aura's slot duration. Changing it after genesis would break block production.
pub const SLOT_DURATION: u64 = MILLI_SECS_PER_BLOCK;

/// Blocks per minute, for converting human periods into block numbers.
pub const MINUTES: BlockNumber = 60_000 / (MILLI_SECS_PER_BLOCK as BlockNumber);
/// Blocks per hour.
pub const HOURS: BlockNumber = MINUTES * 60;
/// Blocks per day.
pub const DAYS: BlockNumber = HOURS * 24;

/// Token decimals: one PRV is `10^12` plancks.
pub const TOKEN_DECIMALS: u8 = 12;
/// The token symbol announced to wallets.
pub const TOKEN_SYMBOL: &str = "PRV";
/// The SS58 prefix: the generic substrate prefix, so every wallet displays addresses unchanged.
pub const SS58_PREFIX: u16 = 42;

/// One PRV.
pub const UNIT: Balance = 1_000_000_000_000;
/// One thousandth of a PRV.
pub const MILLI_UNIT: Balance = 1_000_000_000;
/// One millionth of a PRV.
pub const MICRO_UNIT: Balance = 1_000_000;
/// The minimum balance an account must keep to exist.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;

/// The largest data contribution the runtime admits (DESIGN §2's runtime hard cap).
pub const MAX_CONTRIBUTION_BYTES: u32 = 8 * 1024 * 1024;
/// The largest extrinsic the normal class must admit: a maximal contribution plus room for the
/// signature, extensions and the call's other arguments.
pub const MAX_CONTRIBUTION_EXTRINSIC_BYTES: u32 = MAX_CONTRIBUTION_BYTES + 64 * 1024;

/// Share of the block's weight and length that normal extrinsics may use.
pub(crate) const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// Block weight: two seconds of compute (half a slot), with an unbounded proof size (solo
/// chain).
pub(crate) const MAXIMUM_BLOCK_WEIGHT: Weight =
	Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND.saturating_mul(2), u64::MAX);

/// Block number.
pub type BlockNumber = u32;
/// The signature type accounts sign with.
pub type Signature = MultiSignature;
/// An account's identifier: the public key behind [`Signature`].
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance of an account.
pub type Balance = u128;
/// Index of a transaction in an account's history.
pub type Nonce = u32;
/// A hash of some data used by the chain.
pub type Hash = polkadot_sdk::sp_core::H256;
/// The address format for describing accounts.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header type.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block type.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// A block's signed form.
pub type SignedBlock = generic::SignedBlock<Block>;
/// BlockId type.
pub type BlockId = generic::BlockId<Block>;

/// The transaction extensions: exactly the standard set that polkadot.js, polkadot-api and subxt
/// know, so that every wallet signs for this chain without custom types.
pub type TxExtension = (
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);

/// Unchecked extrinsic type as expected by this runtime.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// The payload being signed in transactions.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// Runtime migrations, run on upgrade in order. Each is a `VersionedMigration`.
type Migrations = ();

/// Executive: dispatches calls to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
	Migrations,
>;

#[frame_support::runtime]
mod runtime {
	/// The Provenant runtime.
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	/// Accounts, blocks, events.
	#[runtime::pallet_index(0)]
	pub type System = frame_system;

	/// Block timestamps, set by an inherent.
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;

	/// Round-robin block authoring.
	#[runtime::pallet_index(2)]
	pub type Aura = pallet_aura;

	/// Finality.
	#[runtime::pallet_index(3)]
	pub type Grandpa = pallet_grandpa;

	/// The PRV token.
	#[runtime::pallet_index(4)]
	pub type Balances = pallet_balances;

	/// Fees.
	#[runtime::pallet_index(5)]
	pub type TransactionPayment = pallet_transaction_payment;

	/// Privileged calls during bootstrapping.
	#[runtime::pallet_index(6)]
	pub type Sudo = pallet_sudo;

	/// Batching.
	#[runtime::pallet_index(7)]
	pub type Utility = pallet_utility;

	/// Typed data networks; the chain stores their files.
	#[runtime::pallet_index(10)]
	pub type Datanets = pallet_datanets;

	/// Staked commit-reveal judging of contributions.
	#[runtime::pallet_index(11)]
	pub type Validation = pallet_validation;

	/// Rankings, reward pools and epoch payouts.
	#[runtime::pallet_index(12)]
	pub type Rewards = pallet_rewards;

	/// Base models, fine-tuning jobs and trainer workers.
	#[runtime::pallet_index(13)]
	pub type Models = pallet_models;

	/// Paid answers: prepaid channels settled with consumers' vouchers.
	#[runtime::pallet_index(14)]
	pub type Inference = pallet_inference;
}

#[cfg(feature = "runtime-benchmarks")]
mod benches {
	polkadot_sdk::frame_benchmarking::define_benchmarks!(
		[frame_benchmarking::baseline, Baseline::<Runtime>]
		[frame_system, SystemBench::<Runtime>]
		[pallet_datanets, Datanets]
		[pallet_validation, Validation]
		[pallet_rewards, Rewards]
		[pallet_models, Models]
		[pallet_inference, Inference]
	);
}

#[cfg(test)]
mod tests {
	use super::*;
	use codec::Decode;
	// frame-support's own copy of frame-metadata: a dev-dependency with other features would
	// rebuild every crate above it for the test build.
	use polkadot_sdk::frame_support::__private::metadata::{
		RuntimeMetadata, RuntimeMetadataPrefixed,
	};

	/// Wallets and subxt read metadata V14 or newer; every version the runtime announces must
	/// decode, and each must list the pallets a wallet needs to build a transfer.
	#[test]
	fn metadata_decodes_at_every_announced_version() {
		let versions = Runtime::metadata_versions();
		assert!(versions.contains(&14) && versions.contains(&15), "versions: {versions:?}");
		for version in versions {
			let Some(opaque) = Runtime::metadata_at_version(version) else {
				// Unstable versions may be announced but not served.
				assert!(version > 15, "stable metadata V{version} missing");
				continue;
			};
			let prefixed = RuntimeMetadataPrefixed::decode(&mut &opaque[..])
				.unwrap_or_else(|e| panic!("V{version} does not decode: {e}"));
			let pallet_names: Vec<String> = match prefixed.1 {
				RuntimeMetadata::V14(m) => m.pallets.into_iter().map(|p| p.name).collect(),
				RuntimeMetadata::V15(m) => m.pallets.into_iter().map(|p| p.name).collect(),
				RuntimeMetadata::V16(m) => m.pallets.into_iter().map(|p| p.name).collect(),
				other => panic!("unexpected metadata version {}", other.version()),
			};
			for needed in ["System", "Balances", "TransactionPayment", "Sudo"] {
				assert!(pallet_names.iter().any(|n| n == needed), "V{version} lacks {needed}");
			}
		}
	}

	/// The standard extensions only, in the order wallets expect them.
	#[test]
	fn transaction_extensions_are_the_standard_set() {
		let Some(opaque) = Runtime::metadata_at_version(15) else { panic!("no V15") };
		let prefixed = RuntimeMetadataPrefixed::decode(&mut &opaque[..]).unwrap();
		let RuntimeMetadata::V15(metadata) = prefixed.1 else { panic!("not V15") };
		let names: Vec<String> =
			metadata.extrinsic.signed_extensions.into_iter().map(|e| e.identifier).collect();
		assert_eq!(
			names,
			[
				"CheckNonZeroSender",
				"CheckSpecVersion",
				"CheckTxVersion",
				"CheckGenesis",
				"CheckMortality",
				"CheckNonce",
				"CheckWeight",
				"ChargeTransactionPayment",
			]
		);
	}

	/// One maximal data contribution must fit the normal class of a block.
	#[test]
	fn block_length_admits_one_maximal_contribution() {
		use polkadot_sdk::frame_support::dispatch::DispatchClass;
		let length = configs::RuntimeBlockLength::get();
		assert!(*length.max.get(DispatchClass::Normal) >= MAX_CONTRIBUTION_EXTRINSIC_BYTES);
	}

	/// The dearest commit and the dearest settlement (a job of `MaxShares` members, each
	/// credited) each take under a tenth of a block, as `configs::models::MaxShares` promises.
	#[test]
	fn the_largest_training_set_is_paid_well_inside_a_block() {
		use pallet_inference::WeightInfo as _;
		use pallet_models::WeightInfo as _;
		use polkadot_sdk::sp_runtime::traits::Zero;
		let members = configs::models::MaxShares::get();
		let block = configs::RuntimeBlockWeights::get().max_block;
		for (call, weight) in [
			("commit", <Runtime as pallet_models::Config>::WeightInfo::commit(members)),
			("settle", <Runtime as pallet_inference::Config>::WeightInfo::settle(members)),
		] {
			assert!(!weight.is_zero(), "{call} has no measured weight");
			assert!(
				weight.ref_time() * 10 < block.ref_time(),
				"{call} of {members} members takes {weight:?} of a {block:?} block"
			);
		}
	}

	/// The client's generated types come from `client/metadata/provenant.scale`. This test
	/// fails when that file no longer matches the runtime, and rewrites it when
	/// `PROVENANT_UPDATE_METADATA=1` (see `scripts/update-metadata.sh`).
	#[test]
	fn metadata_file_is_current() {
		// The crate's folder as cargo gives it at run time: a test binary compiled in another
		// clone that shares the target directory keeps that clone's path in `env!`.
		let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
			.map(std::path::PathBuf::from)
			.unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
		let path = crate_dir.join("../client/metadata/provenant.scale");
		let current = Runtime::metadata_at_version(15).expect("V15 is served").to_vec();
		if std::env::var("PROVENANT_UPDATE_METADATA").as_deref() == Ok("1") {
			std::fs::write(&path, &current).expect("metadata file is writable");
			return;
		}
		let committed = std::fs::read(&path).unwrap_or_default();
		assert!(
			committed == current,
			"{} is stale: run scripts/update-metadata.sh and commit the result",
			path.display()
		);
	}
}
