//! `provenant datanet create|list|show|update|pause|resume|close`.

use anyhow::{anyhow, bail, Result};
use pallet_datanets::{Caps, DataKind, Format, FormatSet};
use provenant_client::{
	runtime::{self, runtime_types::pallet_datanets::pallet::DatanetInfo},
	subxt::utils::{AccountId32, Static},
	Client,
};
use serde_json::json;

use crate::{
	chain::{self, datanet_status_name, format_names, kind_name, submit, text},
	context::{format_prv, Context},
};

const MIB: u64 = 1024 * 1024;

/// Datanet management.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
	/// Create a datanet; a deposit for its metadata is held until it is closed.
	Create(CreateArgs),
	/// List every datanet.
	List,
	/// Show one datanet's rules and today's usage.
	Show {
		/// The datanet's number.
		datanet: u32,
	},
	/// Change a datanet's metadata or rules (owner only).
	Update(UpdateArgs),
	/// Stop taking contributions until resumed (owner only).
	Pause(OwnerArgs),
	/// Take contributions again (owner only).
	Resume(OwnerArgs),
	/// Close for good and get the deposit back (owner only).
	Close(OwnerArgs),
}

/// Options for `datanet create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
	/// Short name.
	#[arg(long)]
	name: String,
	/// What the datanet collects and why.
	#[arg(long, default_value = "")]
	summary: String,
	/// A search tag; repeat for several.
	#[arg(long = "tag")]
	tags: Vec<String>,
	/// The kind of data: text, image or audio. Fixed for life.
	#[arg(long)]
	kind: String,
	/// Comma-separated formats to admit (e.g. `png,jpeg`); all of the kind by default.
	#[arg(long)]
	formats: Option<String>,
	/// Largest file admitted, in MiB (fractions allowed).
	#[arg(long, default_value = "5")]
	max_file_mib: f64,
	/// Bytes admitted per day from all contributors, in MiB.
	#[arg(long, default_value = "10")]
	daily_mib: f64,
	/// The owner: a key name or a dev URI such as `//Alice`.
	#[arg(long)]
	from: String,
}

/// Options for `datanet update`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
	/// The datanet's number.
	datanet: u32,
	/// New name (with `--summary` and `--tag`, replaces the metadata).
	#[arg(long)]
	name: Option<String>,
	/// New summary.
	#[arg(long)]
	summary: Option<String>,
	/// New tags; repeat for several.
	#[arg(long = "tag")]
	tags: Vec<String>,
	/// New comma-separated format allow-list.
	#[arg(long)]
	formats: Option<String>,
	/// New per-file cap, in MiB.
	#[arg(long)]
	max_file_mib: Option<f64>,
	/// New daily cap, in MiB.
	#[arg(long)]
	daily_mib: Option<f64>,
	/// The owner: a key name or a dev URI.
	#[arg(long)]
	from: String,
}

/// Options for owner-only actions.
#[derive(Debug, clap::Args)]
pub(crate) struct OwnerArgs {
	/// The datanet's number.
	datanet: u32,
	/// The owner: a key name or a dev URI.
	#[arg(long)]
	from: String,
}

/// Parses `text`, `image` or `audio`.
pub(crate) fn parse_kind(text: &str) -> Result<DataKind> {
	match text.to_ascii_lowercase().as_str() {
		"text" => Ok(DataKind::Text),
		"image" => Ok(DataKind::Image),
		"audio" => Ok(DataKind::Audio),
		other => bail!("unknown kind '{other}': use text, image or audio"),
	}
}

/// Parses a comma-separated format list, each of `kind`.
fn parse_formats(text: &str, kind: DataKind) -> Result<FormatSet> {
	let mut formats = Vec::new();
	for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
		let format = Format::ALL
			.into_iter()
			.find(|format| {
				format.name() == name.to_ascii_lowercase()
					|| (name == "jpg" && *format == Format::Jpeg)
					|| (name == "md" && *format == Format::Txt)
			})
			.ok_or_else(|| anyhow!("unknown format '{name}'"))?;
		if format.kind() != kind {
			bail!("format '{name}' holds {:?} data, but the datanet is {kind:?}", format.kind());
		}
		formats.push(format);
	}
	if formats.is_empty() {
		bail!("name at least one format");
	}
	Ok(FormatSet::of(&formats))
}

fn mib(value: f64, what: &str) -> Result<u64> {
	// NaN fails `is_finite`, so every value past this check compares.
	if !value.is_finite() || value <= 0.0 {
		bail!("{what} must be a positive number of MiB, not {value}");
	}
	Ok((value * MIB as f64).round() as u64)
}

fn max_file_bytes(max_file_mib: f64) -> Result<u32> {
	u32::try_from(mib(max_file_mib, "--max-file-mib")?)
		.map_err(|_| anyhow!("--max-file-mib is too large"))
}

fn describe(id: u32, info: &DatanetInfo) -> (String, serde_json::Value) {
	let tags: Vec<String> = info.metadata.tags.0.iter().map(|tag| text(&tag.0)).collect();
	let formats = format_names(info.formats.0 .0);
	let kind = kind_name(info.kind.0);
	let owner = AccountId32::from(info.owner.0).to_string();
	let human = format!(
		"datanet {id}: {}\n  kind:      {kind}\n  formats:   {}\n  per file:  {} bytes\n  per day:   {} bytes\n  status:    {}\n  owner:     {owner}\n  deposit:   {}\n  tags:      {}\n  summary:   {}",
		text(&info.metadata.name.0),
		formats.join(", "),
		info.caps.max_file_bytes,
		info.caps.daily_bytes,
		datanet_status_name(info.status.0),
		format_prv(info.deposit),
		tags.join(", "),
		text(&info.metadata.summary.0),
	);
	let json = json!({
		"id": id,
		"name": text(&info.metadata.name.0),
		"summary": text(&info.metadata.summary.0),
		"tags": tags,
		"kind": kind,
		"formats": formats,
		"maxFileBytes": info.caps.max_file_bytes,
		"dailyBytes": info.caps.daily_bytes,
		"status": datanet_status_name(info.status.0),
		"owner": owner,
		"deposit": info.deposit.to_string(),
	});
	(human, json)
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		match self {
			Command::Create(args) => args.execute(context, &client).await,
			Command::List => list(context, &client).await,
			Command::Show { datanet } => {
				let (human, json) = describe(datanet, &chain::datanet(&client, datanet).await?);
				context.emit(human, json);
				Ok(())
			},
			Command::Update(args) => args.execute(context, &client).await,
			Command::Pause(args) => args.pause(context, &client).await,
			Command::Resume(args) => args.resume(context, &client).await,
			Command::Close(args) => args.close(context, &client).await,
		}
	}
}

impl CreateArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let kind = parse_kind(&self.kind)?;
		let formats = match &self.formats {
			Some(list) => parse_formats(list, kind)?,
			None => FormatSet::of(&Format::of_kind(kind).collect::<Vec<_>>()),
		};
		let caps = Caps {
			max_file_bytes: max_file_bytes(self.max_file_mib)?,
			daily_bytes: mib(self.daily_mib, "--daily-mib")?,
		};
		let call = runtime::transactions().datanets().create(
			self.name.into_bytes(),
			self.summary.into_bytes(),
			self.tags.into_iter().map(String::into_bytes).collect(),
			Static(kind),
			Static(formats),
			Static(caps),
		);
		let events = submit(context, client, &self.from, &call).await?;
		let created = events
			.find_first::<runtime::datanets::events::DatanetCreated>()
			.ok_or_else(|| anyhow!("the chain reported no DatanetCreated event"))??;
		let (human, json) =
			describe(created.datanet, &chain::datanet(client, created.datanet).await?);
		context.emit(format!("created {human}"), json);
		Ok(())
	}
}

async fn list(context: &Context, client: &Client) -> Result<()> {
	let rows = chain::all(client, runtime::storage().datanets().datanets()).await?;
	let human = if rows.is_empty() {
		"no datanets yet: create one with `provenant datanet create`".to_string()
	} else {
		rows.iter()
			.map(|(id, info)| {
				format!(
					"{id:>4}  {:<24} {:<6} {:<7} {}",
					text(&info.metadata.name.0),
					kind_name(info.kind.0),
					datanet_status_name(info.status.0),
					format_names(info.formats.0 .0).join(",")
				)
			})
			.collect::<Vec<_>>()
			.join("\n")
	};
	let json: Vec<_> = rows.iter().map(|(id, info)| describe(*id, info).1).collect();
	context.emit(human, json!(json));
	Ok(())
}

impl UpdateArgs {
	async fn execute(self, context: &Context, client: &Client) -> Result<()> {
		let info = chain::datanet(client, self.datanet).await?;
		let mut changed = false;
		if self.name.is_some() || self.summary.is_some() || !self.tags.is_empty() {
			let name = self.name.map(String::into_bytes).unwrap_or(info.metadata.name.0.clone());
			let summary =
				self.summary.map(String::into_bytes).unwrap_or(info.metadata.summary.0.clone());
			let tags = if self.tags.is_empty() {
				info.metadata.tags.0.iter().map(|tag| tag.0.clone()).collect()
			} else {
				self.tags.into_iter().map(String::into_bytes).collect()
			};
			let call = runtime::transactions().datanets().update_metadata(
				self.datanet,
				name,
				summary,
				tags,
			);
			submit(context, client, &self.from, &call).await?;
			changed = true;
		}
		if self.formats.is_some() || self.max_file_mib.is_some() || self.daily_mib.is_some() {
			let formats = match &self.formats {
				Some(list) => parse_formats(list, info.kind.0)?,
				None => info.formats.0,
			};
			let caps = Caps {
				max_file_bytes: match self.max_file_mib {
					Some(value) => max_file_bytes(value)?,
					None => info.caps.max_file_bytes,
				},
				daily_bytes: match self.daily_mib {
					Some(value) => mib(value, "--daily-mib")?,
					None => info.caps.daily_bytes,
				},
			};
			let call = runtime::transactions().datanets().update_rules(
				self.datanet,
				Static(formats),
				Static(caps),
			);
			submit(context, client, &self.from, &call).await?;
			changed = true;
		}
		if !changed {
			bail!("nothing to update: give --name, --summary, --tag, --formats, --max-file-mib or --daily-mib");
		}
		let (human, json) = describe(self.datanet, &chain::datanet(client, self.datanet).await?);
		context.emit(format!("updated {human}"), json);
		Ok(())
	}
}

impl OwnerArgs {
	async fn pause(self, context: &Context, client: &Client) -> Result<()> {
		let call = runtime::transactions().datanets().pause(self.datanet);
		submit(context, client, &self.from, &call).await?;
		self.report_status(context, "paused", "paused");
		Ok(())
	}

	async fn resume(self, context: &Context, client: &Client) -> Result<()> {
		let call = runtime::transactions().datanets().resume(self.datanet);
		submit(context, client, &self.from, &call).await?;
		self.report_status(context, "resumed", "active");
		Ok(())
	}

	fn report_status(&self, context: &Context, done: &str, status: &str) {
		context.emit(
			format!("datanet {} {done}", self.datanet),
			json!({ "datanet": self.datanet, "status": status }),
		);
	}

	async fn close(self, context: &Context, client: &Client) -> Result<()> {
		let call = runtime::transactions().datanets().close(self.datanet);
		let events = submit(context, client, &self.from, &call).await?;
		let released = events
			.find_first::<runtime::datanets::events::DatanetClosed>()
			.transpose()?
			.map(|event| event.deposit_released)
			.unwrap_or_default();
		context.emit(
			format!("datanet {} closed; {} deposit returned", self.datanet, format_prv(released)),
			json!({ "datanet": self.datanet, "status": "closed", "depositReleased": released.to_string() }),
		);
		Ok(())
	}
}
