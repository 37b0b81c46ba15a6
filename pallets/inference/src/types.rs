//! The records the pallet keeps: operators' prices and consumers' prepaid channels, and the
//! vouchers consumers sign to spend them.

use crate::frame_support::{pallet_prelude::ConstU32, BoundedVec};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use pallet_models::JobId;
use scale_info::TypeInfo;

/// A channel's identifier, assigned in opening order from 0 and never reused, so a voucher for
/// one channel can never be spent on another.
pub type ChannelId = u64;

/// The most models (fine-tunes, and the base) one channel pays for. A consumer who wants more
/// opens another channel.
pub const MAX_MODELS_PER_CHANNEL: u32 = 16;

/// What a voucher's signature covers, before the chain's genesis hash and the voucher itself.
pub const VOUCHER_CONTEXT: [u8; 17] = *b"provenant/voucher";

/// Browser wallets (the Polkadot{.js} extension, Talisman, SubWallet) sign raw bytes only
/// wrapped in these, so that no message they sign can ever be a transaction.
pub const WALLET_WRAPPING: (&[u8], &[u8]) = (b"<Bytes>", b"</Bytes>");

/// `payload` as a browser wallet signs it.
pub fn wallet_wrapped(payload: &[u8]) -> Vec<u8> {
	let (open, close) = WALLET_WRAPPING;
	[open, payload, close].concat()
}

/// The models a channel has paid for, each with what was settled for it so far.
pub type SettledModels<Balance> = BoundedVec<Settled<Balance>, ConstU32<MAX_MODELS_PER_CHANNEL>>;

/// A consumer's prepaid deposit for answers from one operator.
#[derive(
	Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo, Clone, PartialEq, Eq, Debug,
)]
pub struct Channel<AccountId, Balance, BlockNumber> {
	/// Who pays; only their vouchers spend the deposit.
	pub consumer: AccountId,
	/// Who serves; only they settle.
	pub operator: AccountId,
	/// The operator's price per token when the channel opened: the deal the consumer took.
	pub price: Balance,
	/// Held from the consumer: the most the operator can ever be paid from this channel.
	pub deposit: Balance,
	/// Per model, the cumulative amount settled so far.
	pub settled: SettledModels<Balance>,
	/// Set when the consumer asked to close: the operator may settle until this block, and the
	/// consumer takes the rest back after it.
	pub closes_at: Option<BlockNumber>,
}

impl<AccountId, Balance, BlockNumber> Channel<AccountId, Balance, BlockNumber>
where
	Balance: Copy + Default + core::ops::Add<Output = Balance>,
{
	/// What was settled for all models together.
	pub fn settled_total(&self) -> Balance {
		self.settled.iter().fold(Balance::default(), |sum, model| sum + model.cumulative)
	}

	/// What was settled so far for `job` (`None`: the base model).
	pub fn settled_for(&self, job: Option<JobId>) -> Balance {
		self.settled
			.iter()
			.find(|model| model.job == job)
			.map_or_else(Balance::default, |model| model.cumulative)
	}
}

/// What a channel has settled for one model.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub struct Settled<Balance> {
	/// The fine-tune's job, or `None` for the base model.
	pub job: Option<JobId>,
	/// The cumulative amount of the latest voucher settled for it.
	pub cumulative: Balance,
}

/// A consumer's promise: the operator may be paid, for answers from `job`'s adapter (or the
/// base model), up to `cumulative` in all from `channel`. Each new voucher for the same model
/// raises `cumulative`; the chain pays only the difference, so a voucher spent twice pays once.
#[derive(
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
)]
pub struct Voucher<Balance> {
	/// The channel it spends.
	pub channel: ChannelId,
	/// The fine-tune's job, or `None` for the base model.
	pub job: Option<JobId>,
	/// The total promised for this model on this channel, this voucher included.
	pub cumulative: Balance,
}

impl<Balance: Encode> Voucher<Balance> {
	/// The bytes the consumer signs: [`VOUCHER_CONTEXT`], the chain's genesis hash, then the
	/// voucher, SCALE-encoded. The genesis hash keeps a voucher for one chain off any other.
	/// A signature of these bytes [`wallet_wrapped`] is as good.
	pub fn signing_payload(&self, genesis: &[u8]) -> Vec<u8> {
		let mut payload = Vec::with_capacity(VOUCHER_CONTEXT.len() + genesis.len() + 32);
		payload.extend_from_slice(&VOUCHER_CONTEXT);
		payload.extend_from_slice(genesis);
		self.encode_to(&mut payload);
		payload
	}
}

/// What one settlement paid, by part.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Settlement<Balance> {
	/// The voucher's rise over the last one settled for its model.
	pub amount: Balance,
	/// To the serving operator.
	pub operator: Balance,
	/// To the trainer, the datanets' pools and the contributors, as the job's fee was split.
	pub job: pallet_models::Paid<Balance>,
	/// How many contributors' shares the split read, which its weight depends on.
	pub members: u32,
}
