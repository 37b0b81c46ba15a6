//! `provenant datanet create|list|show|update|pause|resume|close`.

use anyhow::{anyhow, bail, Result};
use pallet_datanets::{DataKind, Format, FormatSet};
use provenant_client::{
	runtime::{
		self,
		runtime_types::pallet_datanets::{
			format::DataKind as ChainKind,
			pallet::DatanetInfo,
			types::{Caps as ChainCaps, DatanetStatus, FormatSet as ChainFormats},
		},
	},
	subxt::utils::AccountId32,
	Client,
};
use serde_json::json;

use crate::context::{format_prv, Context};

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

/// The names of the formats in `set`.
pub(crate) fn format_names(set: u16) -> Vec<String> {
	Format::ALL.into_iter().filter(|f| set & f.bit() != 0).map(|f| f.name().to_string()).collect()
}

fn mib(value: f64, what: &str) -> Result<u64> {
	// NaN fails `is_finite`, so every value past this check compares.
	if !value.is_finite() || value <= 0.0 {
		bail!("{what} must be a positive number of MiB, not {value}");
	}
	Ok((value * MIB as f64).round() as u64)
}

fn chain_kind(kind: DataKind) -> ChainKind {
	match kind {
		DataKind::Text => ChainKind::Text,
		DataKind::Image => ChainKind::Image,
		DataKind::Audio => ChainKind::Audio,
	}
}

/// The pallet's own kind for a chain-side one.
pub(crate) fn local_kind(kind: &ChainKind) -> DataKind {
	match kind {
		ChainKind::Text => DataKind::Text,
		ChainKind::Image => DataKind::Image,
		ChainKind::Audio => DataKind::Audio,
	}
}

fn caps(max_file_mib: f64, daily_mib: f64) -> Result<ChainCaps> {
	let max_file_bytes = u32::try_from(mib(max_file_mib, "--max-file-mib")?)
		.map_err(|_| anyhow!("--max-file-mib is too large"))?;
	Ok(ChainCaps { max_file_bytes, daily_bytes: mib(daily_mib, "--daily-mib")? })
}

/// Fetches datanet `id` at the latest finalized block.
pub(crate) async fn fetch(client: &Client, id: u32) -> Result<DatanetInfo> {
	client
		.at_current_block()
		.await?
		.storage()
		.try_fetch(runtime::storage().datanets().datanets(), (id,))
		.await?
		.map(|value| value.decode())
		.transpose()?
		.ok_or_else(|| anyhow!("there is no datanet {id}"))
}

fn status_name(status: &DatanetStatus) -> &'static str {
	match status {
		DatanetStatus::Active => "active",
		DatanetStatus::Paused => "paused",
		DatanetStatus::Closed => "closed",
	}
}

fn text(bytes: &[u8]) -> String {
	String::from_utf8_lossy(bytes).into_owned()
}

fn describe(id: u32, info: &DatanetInfo) -> (String, serde_json::Value) {
	let tags: Vec<String> = info.metadata.tags.0.iter().map(|tag| text(&tag.0)).collect();
	let formats = format_names(info.formats.0);
	let kind = format!("{:?}", local_kind(&info.kind)).to_lowercase();
	let owner = AccountId32::from(info.owner.0).to_string();
	let human = format!(
		"datanet {id}: {}\n  kind:      {kind}\n  formats:   {}\n  per file:  {} bytes\n  per day:   {} bytes\n  status:    {}\n  owner:     {owner}\n  deposit:   {}\n  tags:      {}\n  summary:   {}",
		text(&info.metadata.name.0),
		formats.join(", "),
		info.caps.max_file_bytes,
		info.caps.daily_bytes,
		status_name(&info.status),
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
		"status": status_name(&info.status),
		"owner": owner,
		"deposit": info.deposit.to_string(),
	});
	(human, json)
}

/// Signs `call` as `from`, waits for finality, and returns its events.
pub(crate) async fn submit<Call: provenant_client::subxt::transactions::Payload>(
	context: &Context,
	client: &Client,
	from: &str,
	call: &Call,
) -> Result<provenant_client::subxt::extrinsics::ExtrinsicEvents<provenant_client::ProvenantConfig>>
{
	let signer = context.signer(from)?;
	Ok(provenant_client::submit_and_finalize(client, call, &signer).await?)
}

impl Command {
	pub(crate) async fn execute(self, context: &Context) -> Result<()> {
		let client = context.connect().await?;
		match self {
			Command::Create(args) => {
				let kind = parse_kind(&args.kind)?;
				let formats = match &args.formats {
					Some(list) => parse_formats(list, kind)?,
					None => FormatSet::of(&Format::of_kind(kind).collect::<Vec<_>>()),
				};
				let call = runtime::transactions().datanets().create(
					args.name.into_bytes(),
					args.summary.into_bytes(),
					args.tags.into_iter().map(String::into_bytes).collect(),
					chain_kind(kind),
					ChainFormats(formats.0),
					caps(args.max_file_mib, args.daily_mib)?,
				);
				let events = submit(context, &client, &args.from, &call).await?;
				let created =
					events
						.find_first::<runtime::datanets::events::DatanetCreated>()
						.ok_or_else(|| anyhow!("the chain reported no DatanetCreated event"))??;
				let (human, json) =
					describe(created.datanet, &fetch(&client, created.datanet).await?);
				context.emit(format!("created {human}"), json);
			},
			Command::List => {
				let at = client.at_current_block().await?;
				let mut entries =
					at.storage().iter(runtime::storage().datanets().datanets(), ()).await?;
				let mut rows = Vec::new();
				while let Some(entry) = entries.next().await {
					let entry = entry?;
					let (id,) = entry.key()?.decode()?;
					rows.push((id, entry.value().decode()?));
				}
				rows.sort_by_key(|(id, _)| *id);
				let human = if rows.is_empty() {
					"no datanets yet: create one with `provenant datanet create`".to_string()
				} else {
					rows.iter()
						.map(|(id, info): &(u32, DatanetInfo)| {
							format!(
								"{id:>4}  {:<24} {:<6} {:<7} {}",
								text(&info.metadata.name.0),
								format!("{:?}", local_kind(&info.kind)).to_lowercase(),
								status_name(&info.status),
								format_names(info.formats.0).join(",")
							)
						})
						.collect::<Vec<_>>()
						.join("\n")
				};
				let json: Vec<_> = rows.iter().map(|(id, info)| describe(*id, info).1).collect();
				context.emit(human, json!(json));
			},
			Command::Show { datanet } => {
				let (human, json) = describe(datanet, &fetch(&client, datanet).await?);
				context.emit(human, json);
			},
			Command::Update(args) => {
				let info = fetch(&client, args.datanet).await?;
				let kind = local_kind(&info.kind);
				let mut changed = false;
				if args.name.is_some() || args.summary.is_some() || !args.tags.is_empty() {
					let name =
						args.name.map(String::into_bytes).unwrap_or(info.metadata.name.0.clone());
					let summary = args
						.summary
						.map(String::into_bytes)
						.unwrap_or(info.metadata.summary.0.clone());
					let tags = if args.tags.is_empty() {
						info.metadata.tags.0.iter().map(|tag| tag.0.clone()).collect()
					} else {
						args.tags.into_iter().map(String::into_bytes).collect()
					};
					let call = runtime::transactions().datanets().update_metadata(
						args.datanet,
						name,
						summary,
						tags,
					);
					submit(context, &client, &args.from, &call).await?;
					changed = true;
				}
				if args.formats.is_some() || args.max_file_mib.is_some() || args.daily_mib.is_some()
				{
					let formats = match &args.formats {
						Some(list) => ChainFormats(parse_formats(list, kind)?.0),
						None => ChainFormats(info.formats.0),
					};
					let new_caps = ChainCaps {
						max_file_bytes: match args.max_file_mib {
							Some(value) => u32::try_from(mib(value, "--max-file-mib")?)
								.map_err(|_| anyhow!("--max-file-mib is too large"))?,
							None => info.caps.max_file_bytes,
						},
						daily_bytes: match args.daily_mib {
							Some(value) => mib(value, "--daily-mib")?,
							None => info.caps.daily_bytes,
						},
					};
					let call = runtime::transactions().datanets().update_rules(
						args.datanet,
						formats,
						new_caps,
					);
					submit(context, &client, &args.from, &call).await?;
					changed = true;
				}
				if !changed {
					bail!("nothing to update: give --name, --summary, --tag, --formats, --max-file-mib or --daily-mib");
				}
				let (human, json) = describe(args.datanet, &fetch(&client, args.datanet).await?);
				context.emit(format!("updated {human}"), json);
			},
			Command::Pause(args) => {
				let call = runtime::transactions().datanets().pause(args.datanet);
				submit(context, &client, &args.from, &call).await?;
				context.emit(
					format!("datanet {} paused", args.datanet),
					json!({ "datanet": args.datanet, "status": "paused" }),
				);
			},
			Command::Resume(args) => {
				let call = runtime::transactions().datanets().resume(args.datanet);
				submit(context, &client, &args.from, &call).await?;
				context.emit(
					format!("datanet {} resumed", args.datanet),
					json!({ "datanet": args.datanet, "status": "active" }),
				);
			},
			Command::Close(args) => {
				let call = runtime::transactions().datanets().close(args.datanet);
				let events = submit(context, &client, &args.from, &call).await?;
				let released = events
					.find_first::<runtime::datanets::events::DatanetClosed>()
					.transpose()?
					.map(|event| event.deposit_released)
					.unwrap_or_default();
				context.emit(
					format!("datanet {} closed; {} deposit returned", args.datanet, format_prv(released)),
					json!({ "datanet": args.datanet, "status": "closed", "depositReleased": released.to_string() }),
				);
			},
		}
		Ok(())
	}
}
