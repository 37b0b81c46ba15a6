//! One module per subcommand, each with a clap `Command` and `execute`.

use anyhow::Result;

use crate::context::Context;

mod ask;
mod balance;
mod content;
mod contribute;
mod contributions;
mod datanet;
mod job;
mod key;
mod model;
mod pay;
mod rewards;
mod validator;
mod verify;
mod vote;
mod worker;

/// What `provenant` can do.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Create, import and list keys in the encrypted keystore.
	#[command(subcommand)]
	Key(key::Command),
	/// Show an account's balance.
	Balance(balance::BalanceCommand),
	/// Send PRV to another account.
	Transfer(balance::TransferCommand),
	/// Create, inspect and manage datanets.
	#[command(subcommand)]
	Datanet(datanet::Command),
	/// Upload files to a datanet, after checking its rules locally.
	Contribute(contribute::Command),
	/// List contributions and where each stands.
	Contributions(contributions::Command),
	/// Fetch stored content by its hash.
	#[command(subcommand)]
	Content(content::Command),
	/// Stake on quality checks: bond, unbond, withdraw, status.
	#[command(subcommand)]
	Validator(validator::Command),
	/// Judge a contribution (commit now, reveal when the window opens).
	Vote(vote::VoteCommand),
	/// Close a contribution's vote after its reveal window, and show the verdict.
	Close(vote::CloseCommand),
	/// A datanet's contributors ranked by acceptance rate.
	Leaderboard(rewards::LeaderboardCommand),
	/// An account's claimable rewards and ranks.
	Rewards(rewards::RewardsCommand),
	/// Pay credited rewards into the wallet.
	Claim(rewards::ClaimCommand),
	/// Add PRV to a datanet's reward pool.
	Fund(rewards::FundCommand),
	/// Register, list and retire base models.
	#[command(subcommand)]
	Model(model::Command),
	/// Order, list, inspect and cancel fine-tuning jobs.
	#[command(subcommand)]
	Job(job::Command),
	/// Trainer workers: bond, unbond, status.
	#[command(subcommand)]
	Worker(worker::Command),
	/// Check from chain data that an adapter is a job's committed result, and which
	/// contributions trained it.
	Verify(verify::Command),
	/// Ask a served model; see the answer and the contributions it came from.
	Ask(ask::Command),
	/// Pay for answers: operators' prices, consumers' channels and deposits.
	#[command(subcommand)]
	Pay(pay::Command),
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		match self {
			Command::Key(command) => command.execute(context),
			Command::Balance(command) => command.execute(context).await,
			Command::Transfer(command) => command.execute(context).await,
			Command::Datanet(command) => command.execute(context).await,
			Command::Contribute(command) => command.execute(context).await,
			Command::Contributions(command) => command.execute(context).await,
			Command::Content(command) => command.execute(context).await,
			Command::Validator(command) => command.execute(context).await,
			Command::Vote(command) => command.execute(context).await,
			Command::Close(command) => command.execute(context).await,
			Command::Leaderboard(command) => command.execute(context).await,
			Command::Rewards(command) => command.execute(context).await,
			Command::Claim(command) => command.execute(context).await,
			Command::Fund(command) => command.execute(context).await,
			Command::Model(command) => command.execute(context).await,
			Command::Job(command) => command.execute(context).await,
			Command::Worker(command) => command.execute(context).await,
			Command::Verify(command) => command.execute(context).await,
			Command::Ask(command) => command.execute(context).await,
			Command::Pay(command) => command.execute(context).await,
		}
	}
}
