//! `provenant pay`: prepaid channels for paid answers (`pallet_inference`). An operator
//! publishes a price; a consumer opens a channel with a deposit, then `provenant ask` signs a
//! voucher for each answer, and the operator settles them on chain, where each payment is
//! split between the operator, the trainer, the datanets' pools and the contributors.

use anyhow::{anyhow, Context as _, Result};
use provenant_client::{
	runtime::{self, runtime_types::pallet_inference::types::Channel},
	subxt::utils::AccountId32,
	Client,
};
use serde_json::json;

use crate::{
	chain::{all, block_number, submit},
	context::{format_prv, parse_prv, Context},
};

/// Prepaid channels: prices, deposits, closing.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// As a serving operator, set the price per token of new channels to you.
	Price {
		/// PRV per token (prompt and answer), for example `0.000001`.
		price: Option<String>,
		/// Stop taking new channels instead.
		#[arg(long, conflicts_with = "price")]
		withdraw: bool,
		/// The operator's key.
		#[arg(long)]
		from: String,
	},
	/// Open a channel to a serving operator, holding a deposit that pays for your answers.
	Open {
		/// The operator (its SS58 address; a server in paid mode names it at `/v1/payment`).
		operator: String,
		/// PRV to hold, for example `5`: the most the operator can ever be paid from it.
		#[arg(long)]
		deposit: String,
		/// Who pays.
		#[arg(long)]
		from: String,
	},
	/// Add to a channel's deposit.
	TopUp {
		/// The channel's number.
		channel: u64,
		/// PRV to add.
		#[arg(long)]
		amount: String,
		/// The channel's consumer.
		#[arg(long)]
		from: String,
	},
	/// Close a channel. An operator closes at once; a consumer's first call gives the operator
	/// time to settle its last vouchers, and a second call after that takes the rest back.
	Close {
		/// The channel's number.
		channel: u64,
		/// The consumer or the operator.
		#[arg(long)]
		from: String,
	},
	/// The channels an account pays or serves through.
	Channels {
		/// A keystore name, SS58 address or dev URI.
		who: String,
	},
}

type ChannelOf = Channel<AccountId32, u128, u32>;

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		match self {
			Command::Price { price, withdraw, from } => {
				let price = match (price, withdraw) {
					(Some(price), false) => Some(parse_prv(&price)?),
					(None, true) => None,
					_ => return Err(anyhow!("give a price per token, or --withdraw")),
				};
				let call = runtime::transactions().inference().set_price(price);
				submit(context, &client, &from, &call).await.context("setting the price")?;
				let human = match price {
					Some(price) => {
						format!("new channels to you pay {} per token", format_prv(price))
					},
					None => "you take no new channels; open ones keep their price".into(),
				};
				context.emit(human, json!({ "price": price.map(|p| p.to_string()) }));
			},
			Command::Open { operator, deposit, from } => {
				let operator = context.account(&operator)?;
				let deposit = parse_prv(&deposit)?;
				let call = runtime::transactions().inference().open(operator, deposit);
				let events =
					submit(context, &client, &from, &call).await.context("opening the channel")?;
				let opened = events
					.find_first::<runtime::inference::events::ChannelOpened>()
					.ok_or_else(|| anyhow!("the chain reported no ChannelOpened event"))??;
				context.emit(
					format!(
						"opened channel {} to {operator}: {} held, {} per token",
						opened.channel,
						format_prv(opened.deposit),
						format_prv(opened.price)
					),
					json!({
						"channel": opened.channel,
						"operator": operator.to_string(),
						"deposit": opened.deposit.to_string(),
						"price": opened.price.to_string(),
					}),
				);
			},
			Command::TopUp { channel, amount, from } => {
				let amount = parse_prv(&amount)?;
				let call = runtime::transactions().inference().top_up(channel, amount);
				let events = submit(context, &client, &from, &call).await.context("topping up")?;
				let topped = events
					.find_first::<runtime::inference::events::ToppedUp>()
					.ok_or_else(|| anyhow!("the chain reported no ToppedUp event"))??;
				context.emit(
					format!("channel {channel} now holds {}", format_prv(topped.deposit)),
					json!({ "channel": channel, "deposit": topped.deposit.to_string() }),
				);
			},
			Command::Close { channel, from } => {
				let call = runtime::transactions().inference().close(channel);
				let events =
					submit(context, &client, &from, &call).await.context("closing the channel")?;
				if let Some(closing) =
					events.find_first::<runtime::inference::events::Closing>().transpose()?
				{
					context.emit(
						format!(
							"channel {channel} is closing: its operator may settle until block \
							 #{}; run this again after it to take the rest of the deposit back",
							closing.at
						),
						json!({ "channel": channel, "closesAt": closing.at }),
					);
				} else {
					let closed = events
						.find_first::<runtime::inference::events::Closed>()
						.ok_or_else(|| anyhow!("the chain reported no Closed event"))??;
					context.emit(
						format!(
							"channel {channel} closed: {} paid for answers, {} back to its \
							 consumer",
							format_prv(closed.settled),
							format_prv(closed.refunded)
						),
						json!({
							"channel": channel,
							"settled": closed.settled.to_string(),
							"refunded": closed.refunded.to_string(),
						}),
					);
				}
			},
			Command::Channels { who } => {
				let account = context.account(&who)?;
				let now = block_number(&client).await?;
				let mine: Vec<(u64, ChannelOf)> = channels(&client)
					.await?
					.into_iter()
					.filter(|(_, c)| c.consumer == account || c.operator == account)
					.collect();
				if context.json {
					let rows: Vec<_> = mine.iter().map(|(id, c)| channel_json(*id, c)).collect();
					println!("{}", serde_json::to_string_pretty(&rows)?);
					return Ok(());
				}
				if mine.is_empty() {
					println!("{account} has no open channel: `provenant pay open` opens one");
				}
				for (id, channel) in &mine {
					let role = if channel.consumer == account { "pays" } else { "serves" };
					let settled = settled_total(channel);
					let closing = match channel.closes_at {
						Some(at) if at >= now => format!("; closing, settles until #{at}"),
						Some(_) => "; closing period over: the consumer may close it".into(),
						None => String::new(),
					};
					println!(
						"channel {id}: {role}; {} -> {}; {} per token; deposit {}, settled {}{closing}",
						channel.consumer,
						channel.operator,
						format_prv(channel.price),
						format_prv(channel.deposit),
						format_prv(settled),
					);
				}
			},
		}
		Ok(())
	}
}

/// Every open channel, by number.
pub(crate) async fn channels(client: &Client) -> Result<Vec<(u64, ChannelOf)>> {
	all(client, runtime::storage().inference().channels()).await
}

/// What a channel has paid out for all its models together.
pub(crate) fn settled_total(channel: &ChannelOf) -> u128 {
	channel.settled.0.iter().map(|model| model.cumulative).sum()
}

fn channel_json(id: u64, channel: &ChannelOf) -> serde_json::Value {
	json!({
		"channel": id,
		"consumer": channel.consumer.to_string(),
		"operator": channel.operator.to_string(),
		"price": channel.price.to_string(),
		"deposit": channel.deposit.to_string(),
		"settled": settled_total(channel).to_string(),
		"closesAt": channel.closes_at,
	})
}
