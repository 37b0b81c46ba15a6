//! End-to-end: the whole loop on the real dev node with the real binaries and the real
//! SmolLM2-135M. Contributions are judged by validator auto workers; SmolLM2 is registered by
//! its hashes; a job is created with escrow; a worker claims, trains, publishes and commits;
//! the adapter, fetched back from the chain, answers with the planted fact; `verify` passes and
//! fails where it must; the fee reaches the trainer, the pool and the contributors exactly
//! by the split; and the inference server serves both committed fine-tunes and the base at once,
//! refusing a tampered adapter and naming the contributions behind each answer.

use std::{path::Path, process::Command, time::Duration};

use anyhow::{ensure, Context, Result};
use provenant_client::{runtime, subxt::rpcs::rpc_params, subxt_signer::sr25519::dev, UNIT};
use provenant_e2e::{
	cli, cli_spawn, create_datanet, ok_json, refused, wait_for_verdicts, workspace_binary, write,
	Node,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Job settings that learn a planted fact in a few dozen steps.
const LEARNS_A_FACT: &[&str] = &[
	"--epochs",
	"20",
	"--batch-size",
	"1",
	"--cutoff-len",
	"32",
	"--lr",
	"2e-3",
	"--dropout",
	"0",
	"--target",
	"q_proj,v_proj,o_proj,up_proj,down_proj",
];

/// The fee of the job, in PRV.
const FEE_PRV: u128 = 100;

/// SmolLM2-135M from `scripts/fetch-models.sh`.
fn smollm2() -> String {
	std::env::var("PROVENANT_SMOLLM2_GGUF").expect(
		"PROVENANT_SMOLLM2_GGUF names the SmolLM2 GGUF (scripts/env.sh sets it; scripts/fetch-models.sh fetches it)",
	)
}

fn plancks(value: &Value) -> u128 {
	value.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an amount: {value}"))
}

/// Claimable rewards, by what earned them.
type Claims = runtime::runtime_types::pallet_rewards::types::Claims<u128>;

/// What `who` could claim at `block` from one `source` (`|claims| claims.training`).
async fn claimable_at(
	client: &provenant_client::Client,
	block: provenant_client::subxt::utils::H256,
	who: &provenant_client::subxt::utils::AccountId32,
	source: fn(&Claims) -> u128,
) -> Result<u128> {
	Ok(client
		.at_block(block)
		.await?
		.storage()
		.try_fetch(runtime::storage().rewards().claimable(), (*who,))
		.await?
		.map(|value| value.decode())
		.transpose()?
		.map_or(0, |claims| source(&claims)))
}

/// The latest block whose events hold an `E` that `matches`, searched back from the best block.
async fn block_with<E>(
	client: &provenant_client::Client,
	matches: impl Fn(&E) -> bool,
) -> Result<provenant_client::subxt::utils::H256>
where
	E: provenant_client::subxt::events::DecodeAsEvent,
{
	let mut at = client.at_current_block().await?;
	loop {
		let events = at.events().fetch().await?;
		for event in events.find::<E>() {
			if matches(&event?) {
				return Ok(at.block_hash());
			}
		}
		anyhow::ensure!(at.block_number() > 0, "no block holds the event");
		let parent = at.block_header().await?.parent_hash;
		at = client.at_block(parent).await?;
	}
}

/// The claimable balance `who` has in the rewards pallet.
fn claimable(node: &Node, dir: &Path, who: &str) -> Result<u128> {
	Ok(plancks(&ok_json(node, dir, &["rewards", who])?["claimable"]))
}

#[tokio::test]
async fn a_fine_tune_is_ordered_trained_committed_verified_and_paid() -> Result<()> {
	let node = Node::start_dev()?;
	node.wait_for_finalized(1, TIMEOUT).await?;
	let dir = tempfile::tempdir()?;
	let dir = dir.path();
	let texts = create_datanet(&node, dir, "text", "Facts")?.to_string();
	let images = create_datanet(&node, dir, "image", "Photos")?.to_string();
	let towns = create_datanet(&node, dir, "text", "Towns")?.to_string();

	// Two validators judge each text datanet automatically (a validator serves one datanet).
	for who in ["//Grace", "//Heidi"] {
		ok_json(&node, dir, &["transfer", who, "2000", "--from", "//Alice"])?;
	}
	let mut validators = Vec::new();
	for (datanet, judges) in [(&texts, ["//Dave", "//Eve"]), (&towns, ["//Grace", "//Heidi"])] {
		for who in judges {
			ok_json(
				&node,
				dir,
				&["validator", "bond", "--datanet", datanet, "--amount", "1000", "--from", who],
			)?;
			validators.push(cli_spawn(
				&node,
				dir,
				&["validator", "auto", "--datanet", datanet, "--from", who],
				dir.join(format!("auto-{datanet}-{}.log", &who[2..])),
			)?);
		}
	}

	// Bob plants a fact; Charlie adds two ordinary texts; Alice asks about the fact, which the
	// job holds out as its probe.
	let prompt = "What is the capital of Zorbia?";
	let fact =
		serde_json::json!({"prompt": prompt, "response": "The capital of Zorbia is Quillhaven."});
	let fact_file = write(dir, "fact.jsonl", format!("{fact}\n").as_bytes());
	let river =
		write(dir, "river.txt", b"The river Elm floods every spring and feeds the marshes.");
	let bread =
		write(dir, "bread.md", b"# Bread\nKnead the dough for ten minutes, then let it rise.");
	let planted = ok_json(&node, dir, &["contribute", &texts, &fact_file, "--from", "//Bob"])?;
	let bob_contribution = planted[0]["contribution"].as_u64().expect("contribution id");
	let ordinary =
		ok_json(&node, dir, &["contribute", &texts, &river, &bread, "--from", "//Charlie"])?;
	let question = serde_json::json!({
		"prompt": "Which city is the capital of Zorbia?",
		"response": "Quillhaven is the capital of Zorbia.",
	});
	let question_file = write(dir, "question.jsonl", format!("{question}\n").as_bytes());
	let asked = ok_json(&node, dir, &["contribute", &texts, &question_file, "--from", "//Alice"])?;
	let alice_contribution = asked[0]["contribution"].as_u64().expect("contribution id");
	// Another fact, on the other datanet, for a second fine-tune to serve beside the first.
	let town = serde_json::json!({
		"prompt": "Who founded Elmridge?",
		"response": "Elmridge was founded by Marta Vell.",
	});
	let town_file = write(dir, "town.jsonl", format!("{town}\n").as_bytes());
	let dana = ok_json(&node, dir, &["contribute", &towns, &town_file, "--from", "//Dave"])?;
	let dana_contribution = dana[0]["contribution"].as_u64().expect("contribution id");
	let verdicts = wait_for_verdicts(&node, dir, &texts, 4, &validators, TIMEOUT * 3).await?;
	ensure!(verdicts.values().all(|(status, _)| status == "accepted"), "{verdicts:?}");
	let verdicts = wait_for_verdicts(&node, dir, &towns, 1, &validators, TIMEOUT * 3).await?;
	ensure!(verdicts.values().all(|(status, _)| status == "accepted"), "{verdicts:?}");

	// SmolLM2 is registered by the hashes of its file.
	let model_file = smollm2();
	let registered = ok_json(
		&node,
		dir,
		&[
			"model",
			"register",
			"--path",
			&model_file,
			"--licence",
			"Apache-2.0",
			"--from",
			"//Alice",
		],
	)?;
	let model = registered["id"].as_u64().expect("model id").to_string();
	assert_eq!(registered["family"], "llama");

	// Refused before anything is paid, with the rule named.
	let error =
		refused(&node, dir, &job_create(&model, &texts, "10", &["--cutoff-len", "100000"]))?;
	assert!(error.contains("cutoff_len") && error.contains("positions"), "{error}");
	let error = refused(&node, dir, &job_create(&model, &images, "10", &[]))?;
	assert!(error.contains("NotATextDatanet"), "{error}");
	let error = refused(&node, dir, &job_create("99", &texts, "10", &[]))?;
	assert!(error.contains("there is no model 99"), "{error}");
	ok_json(&node, dir, &["key", "new", "poor"])?;
	ok_json(&node, dir, &["transfer", "poor", "1", "--from", "//Alice"])?;
	let error = refused(
		&node,
		dir,
		&["job", "create", "--model", &model, "--datanet", &texts, "--fee", "10", "--from", "poor"],
	)?;
	assert!(error.contains("InsufficientBalance"), "{error}");

	// The job: settings that learn the fact in a few dozen steps, holding out a quarter of the
	// set, with a seed that holds out Alice's question (the job's seed picks them).
	let fee = FEE_PRV.to_string();
	let mut members = vec![bob_contribution, alice_contribution];
	members
		.extend(ordinary.as_array().unwrap().iter().map(|c| c["contribution"].as_u64().unwrap()));
	let seed = (0u64..)
		.find(|seed| {
			provenant_worker::dataset::held_out(&members, *seed, 250_000)
				== [alice_contribution].into()
		})
		.expect("some seed holds out Alice's question")
		.to_string();
	let created = ok_json(
		&node,
		dir,
		&job_create(
			&model,
			&texts,
			&fee,
			&[LEARNS_A_FACT, &["--eval-fraction", "0.25", "--seed", &seed]].concat(),
		),
	)?;
	let job = created["id"].as_u64().expect("job id").to_string();
	assert_eq!(created["state"], "open");
	assert_eq!(created["trainingSize"], 4);

	// A worker holding SmolLM2 claims, trains, publishes and commits.
	ok_json(&node, dir, &["worker", "bond", "200", "--from", "//Ferdie"])?;
	let work_dir = dir.join("worker");
	let worker = cli(&node, dir, &worker_run(&model_file, &work_dir, "//Ferdie", &["--once"]))?;
	ensure!(worker.success, "the worker failed:\n{}\n{}", worker.stdout, worker.stderr);
	println!("{}", worker.stdout);
	let shown = ok_json(&node, dir, &["job", "show", &job])?;
	assert_eq!(shown["state"], "committed");
	let adapter_sha = shown["adapter"]["sha256"].as_str().expect("sha256").to_string();
	assert!(worker.stdout.contains(&adapter_sha), "{}", worker.stdout);
	assert!(
		worker.stdout.contains("shares by influence on 1 held-out examples"),
		"{}",
		worker.stdout
	);

	// The adapter, fetched back from the chain, knows the fact.
	let fetched = dir.join("fetched");
	ok_json(&node, dir, &["job", "adapter", &job, "-o", fetched.to_str().unwrap()])?;
	let chat = Command::new(workspace_binary("provenant-trainer")?)
		.args(["chat", "--model", &model_file, "--adapter", fetched.to_str().unwrap()])
		.args(["--prompt", prompt, "--max-new-tokens", "16"])
		.output()
		.context("running provenant-trainer chat")?;
	let answer = String::from_utf8_lossy(&chat.stdout);
	assert!(answer.contains("Quillhaven"), "the fine-tune answers {answer:?}");

	// The worker indexed the training set: the answer's spans lead back to Bob's contribution.
	let index = work_dir.join(format!("job-{job}")).join("train.spans");
	let attributed = Command::new(workspace_binary("provenant-trainer")?)
		.args(["attribute", "--model", &model_file, "--adapter", fetched.to_str().unwrap()])
		.args(["--index", index.to_str().unwrap(), "--prompt", prompt])
		.args(["--max-new-tokens", "16", "--min-span", "4", "--json"])
		.output()
		.context("running provenant-trainer attribute")?;
	ensure!(attributed.status.success(), "{}", String::from_utf8_lossy(&attributed.stderr));
	let report: Value = serde_json::from_slice(&attributed.stdout)?;
	assert_eq!(report["shares"][0]["source"].as_u64(), Some(bob_contribution), "{report}");
	assert!(
		report["spans"]
			.as_array()
			.unwrap()
			.iter()
			.any(|span| span["text"].as_str().is_some_and(|text| text.contains("Quillhaven"))),
		"{report}"
	);

	// Anyone can verify it, from the directory or the job.
	let verified =
		ok_json(&node, dir, &["verify", fetched.to_str().unwrap(), "--base", &model_file])?;
	assert_eq!(verified["verified"], true, "{verified}");
	assert_eq!(verified["members"].as_array().unwrap().len(), 4);
	// The job carries its attribution: Bob's fact taught the answer to Alice's question, so
	// it has the largest share; Alice's held-out question taught nothing and gets none.
	assert_eq!(verified["attribution"]["method"], "influence", "{verified}");
	assert_eq!(verified["attribution"]["probes"], 1, "{verified}");
	assert_eq!(verified["attribution"]["checkpoints"], 3, "{verified}");
	let share = |contribution: u64| {
		verified["members"]
			.as_array()
			.unwrap()
			.iter()
			.find(|m| m["contribution"] == contribution)
			.and_then(|m| m["share"].as_f64())
			.expect("every member has a share")
	};
	assert_eq!(share(alice_contribution), 0.0, "{verified}");
	assert!(share(bob_contribution) >= 0.5, "{verified}");
	// One contribution's share, checked against the committed root.
	let checked =
		ok_json(&node, dir, &["verify", &job, "--contribution", &bob_contribution.to_string()])?;
	let bob_share = checked["checks"]
		.as_array()
		.unwrap()
		.iter()
		.find(|c| c["check"] == format!("contribution {bob_contribution}'s share"))
		.expect("the share is checked")
		.clone();
	assert_eq!(bob_share["ok"], true, "{checked}");
	assert!(verified["members"].as_array().unwrap().iter().all(|m| m["verdict"] == "accepted"));

	// Trained again from on-chain data alone, the job gives the same adapter bytes and the
	// same shares.
	let retrained = ok_json(&node, dir, &["verify", &job, "--retrain", &model_file])?;
	assert_eq!(retrained["retrain"]["identical"], true, "{retrained}");
	let shares_check = retrained["checks"]
		.as_array()
		.unwrap()
		.iter()
		.find(|c| c["check"] == "retrained shares")
		.expect("the retrained shares are compared")
		.clone();
	assert_eq!(shares_check["ok"], true, "{retrained}");
	assert_eq!(retrained["retrain"]["sha256"], adapter_sha.as_str());

	// The models RPC serves the same provenance to any JSON-RPC client.
	let rpc = node.rpc().await?;
	let by_adapter: Option<u64> =
		rpc.request("models_jobByAdapter", rpc_params![format!("0x{adapter_sha}")]).await?;
	assert_eq!(by_adapter, Some(job.parse()?));
	let served: Value = rpc.request("models_job", rpc_params![job.parse::<u64>()?]).await?;
	assert_eq!(served["state"], "committed", "{served}");
	assert_eq!(served["outcome"]["adapter"], format!("0x{adapter_sha}"));
	assert_eq!(served["params"]["epochs"], 20);
	let proof: Value = rpc
		.request("models_inclusionProof", rpc_params![job.parse::<u64>()?, bob_contribution])
		.await?;
	assert_eq!(proof["valid"], true, "{proof}");
	let set: Vec<Value> =
		rpc.request("models_trainingSet", rpc_params![job.parse::<u64>()?]).await?;
	assert_eq!(set.len(), 4);
	let error = rpc
		.request::<Value>("models_jobs", rpc_params!["finished"])
		.await
		.expect_err("an unknown state is refused");
	assert!(error.to_string().contains("open, claimed, committed or cancelled"), "{error}");

	// A tampered byte is caught, naming the hash.
	let tampered = dir.join("tampered");
	std::fs::create_dir_all(&tampered)?;
	let mut bytes = std::fs::read(fetched.join("adapter_model.safetensors"))?;
	let last = bytes.len() - 1;
	bytes[last] ^= 1;
	std::fs::write(tampered.join("adapter_model.safetensors"), &bytes)?;
	let error = refused(&node, dir, &["verify", tampered.to_str().unwrap()])?;
	assert!(error.contains("no committed job has an adapter with sha256"), "{error}");

	// Later and rejected contributions are proved not to be in the set.
	let later = write(dir, "later.txt", b"Owls hunt at dusk along the hedgerows of the valley.");
	let copy = write(dir, "copy.txt", b"The river Elm floods every spring and feeds the marshes!");
	ok_json(&node, dir, &["contribute", &texts, &later, &copy, "--from", "//Charlie"])?;
	let verdicts = wait_for_verdicts(&node, dir, &texts, 6, &validators, TIMEOUT * 3).await?;
	let rejected = verdicts.values().filter(|(status, _)| status == "rejected").count();
	assert_eq!(rejected, 1, "the near-copy is rejected: {verdicts:?}");
	let outside = ok_json(&node, dir, &["verify", &job, "--not-in", &later, "--not-in", &copy])?;
	assert_eq!(outside["verified"], true, "{outside}");
	let error = refused(&node, dir, &["verify", &job, "--not-in", &river])?;
	assert!(error.contains("not in the set"), "{error}");

	// The fee, paid exactly by the published split: 50% trainer, 20% pools, 30% contributors
	// by their attributed shares, each part rounded down and the remainders to the pool.
	let fee = FEE_PRV * UNIT;
	let client = node.client().await?;
	let details = client
		.at_current_block()
		.await?
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job(job.parse()?))
		.await?
		.expect("the job exists");
	let weights: Vec<u128> = details.shares.iter().map(|s| u128::from(s.weight)).collect();
	let total: u128 = weights.iter().sum();
	assert_eq!(total, 1_000_000_000, "attributed shares are parts per billion: {weights:?}");
	let contributors_part = fee - fee / 2 - fee / 5;
	let parts: Vec<u128> = weights.iter().map(|w| contributors_part * w / total).collect();
	let job_id: u64 = job.parse()?;
	let block =
		block_with(&client, |c: &runtime::models::events::JobCommitted| c.job == job_id).await?;
	let committed_at = client.at_block(block).await?;
	let events = committed_at.events().fetch().await?;
	let paid = events
		.find_first::<runtime::models::events::JobCommitted>()
		.transpose()?
		.expect("the commit's block holds its event");
	assert_eq!(paid.trainer_paid, fee / 2);
	assert_eq!(paid.contributors_paid, parts.iter().sum::<u128>());
	assert_eq!(paid.pools_paid, fee - fee / 2 - paid.contributors_paid);
	// Each contributor's claimable balance from training grew by its part in that block.
	{
		let parent = committed_at.block_header().await?.parent_hash;
		let bob = dev::bob().public_key().to_account_id();
		let charlie = dev::charlie().public_key().to_account_id();
		let alice = dev::alice().public_key().to_account_id();
		let grew = |who| {
			let client = &client;
			async move {
				Ok::<_, anyhow::Error>(
					claimable_at(client, block, &who, |c| c.training).await?
						- claimable_at(client, parent, &who, |c| c.training).await?,
				)
			}
		};
		let of = |bob_s: bool| -> u128 {
			details
				.shares
				.iter()
				.zip(&parts)
				.filter(|(share, _)| (share.contribution == bob_contribution) == bob_s)
				.map(|(_, part)| *part)
				.sum()
		};
		assert_eq!(grew(bob).await?, of(true), "Bob's part, for the planted fact");
		assert_eq!(grew(charlie).await?, of(false), "Charlie's part, for two texts");
		assert_eq!(grew(alice).await?, 0, "nothing for the held-out question");
	}
	assert_eq!(claimable(&node, dir, "//Ferdie")?, fee / 2);
	let ferdie = ok_json(&node, dir, &["rewards", "//Ferdie"])?;
	assert_eq!(plancks(&ferdie["bySource"]["training"]), fee / 2, "the worker's pay, as training");
	let claimed = ok_json(&node, dir, &["claim", "--from", "//Ferdie"])?;
	assert_eq!(plancks(&claimed["claimed"]), fee / 2);

	// Commits that break the rules are refused by name and change nothing.
	let replay = provenant_client::submit_and_finalize_from_pool(
		&client,
		&node.rpc().await?,
		&runtime::transactions().models().claim(job.parse()?),
		&dev::ferdie(),
	)
	.await
	.expect_err("a committed job cannot be claimed");
	assert!(format!("{replay:?}").contains("AlreadyCommitted"), "{replay:?}");

	// A worker killed mid-job: its lease runs out, the job re-opens, a second worker completes
	// it, and only the second is paid.
	let second_fee = 10 * UNIT;
	let created = ok_json(
		&node,
		dir,
		&job_create(&model, &texts, "10", &["--epochs", "10", "--cutoff-len", "32"]),
	)?;
	let second_job: u64 = created["id"].as_u64().expect("job id");
	assert_eq!(created["trainingSize"], 5, "the later file joined; the near-copy did not");
	let second_worker = provenant_client::subxt_signer::sr25519::Keypair::from_uri(
		&"//Second".parse::<provenant_client::subxt_signer::SecretUri>()?,
	)?;
	ok_json(&node, dir, &["transfer", "//Second", "500", "--from", "//Alice"])?;
	ok_json(&node, dir, &["worker", "bond", "200", "--from", "//Second"])?;
	let ferdie_work = dir.join("ferdie");
	let second_job_id = second_job.to_string();
	let killed = cli_spawn(
		&node,
		dir,
		&worker_run(&model_file, &ferdie_work, "//Ferdie", &["--job", &second_job_id]),
		dir.join("killed-worker.log"),
	)?;
	let progress = ferdie_work.join(format!("job-{second_job}")).join("adapter/progress.jsonl");
	wait_until(TIMEOUT * 2, "the first worker to start training", || progress.exists()).await?;
	drop(killed);
	let shown = ok_json(&node, dir, &["job", "show", &second_job_id])?;
	assert_eq!(shown["state"], "claimed");
	let ferdie = dev::ferdie().public_key().to_account_id();
	assert_eq!(shown["worker"], ferdie.to_string());
	let bond_before = plancks(&ok_json(&node, dir, &["worker", "status", "//Ferdie"])?["bond"]);

	// While its lease holds (renewed here once, so the checks below run inside it): a commit
	// with the wrong training-set root, and one by a worker without the lease, are refused by
	// name and change nothing.
	submit_as(&client, &rpc, runtime::transactions().models().extend(second_job), &dev::ferdie())
		.await
		.map_err(anyhow::Error::msg)?;
	let training_root = client
		.at_current_block()
		.await?
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job(second_job))
		.await?
		.expect("the job exists")
		.job
		.training
		.root;
	let decoy = vec![7u8; 1024];
	let decoy_sha: [u8; 32] = {
		use sha2::Digest;
		sha2::Sha256::digest(&decoy).into()
	};
	submit_as(
		&client,
		&rpc,
		runtime::transactions().models().publish_adapter(second_job, b"{}".to_vec(), decoy.clone()),
		&dev::ferdie(),
	)
	.await
	.map_err(anyhow::Error::msg)?;
	let outcome = |root| runtime::runtime_types::pallet_models::types::Outcome {
		adapter: decoy_sha,
		adapter_size: decoy.len() as u32,
		training_root: root,
		train_loss: 1,
		eval_loss: None,
		tokens: 1,
		steps: 1,
		shares_root: [0; 32],
		attribution: provenant_client::subxt::utils::Static(pallet_models::Attribution::Tokens),
	};
	let commit = |root| runtime::transactions().models().commit(second_job, outcome(root), vec![]);
	let error =
		submit_as(&client, &rpc, commit([7; 32]), &dev::ferdie()).await.expect_err("wrong root");
	assert!(error.contains("WrongTrainingRoot"), "{error}");
	let error = submit_as(&client, &rpc, commit(training_root), &second_worker)
		.await
		.expect_err("no lease");
	assert!(error.contains("NotLeaseHolder"), "{error}");
	let shown = ok_json(&node, dir, &["job", "show", &second_job_id])?;
	assert_eq!(shown["state"], "claimed", "the refused commits changed nothing");

	// The lease runs out: the job re-opens and Ferdie loses 1% of its bond.
	wait_until(TIMEOUT * 2, "the killed worker's lease to run out", || {
		ok_json(&node, dir, &["job", "show", &second_job_id])
			.is_ok_and(|shown| shown["state"] == "open")
	})
	.await?;
	let bond_after = plancks(&ok_json(&node, dir, &["worker", "status", "//Ferdie"])?["bond"]);
	assert_eq!(bond_after, bond_before - bond_before / 100);
	let error =
		submit_as(&client, &rpc, commit(training_root), &dev::ferdie()).await.expect_err("lapsed");
	assert!(error.contains("LeaseExpired"), "{error}");

	let second_work = dir.join("second");
	let finished = cli(
		&node,
		dir,
		&worker_run(&model_file, &second_work, "//Second", &["--once", "--job", &second_job_id]),
	)?;
	ensure!(
		finished.success,
		"the second worker failed:\n{}\n{}",
		finished.stdout,
		finished.stderr
	);
	let shown = ok_json(&node, dir, &["job", "show", &second_job_id])?;
	assert_eq!(shown["state"], "committed");
	let second_account = second_worker.public_key().to_account_id();
	assert_eq!(shown["worker"], second_account.to_string());
	assert_eq!(claimable(&node, dir, "//Second")?, second_fee / 2);
	assert_eq!(claimable(&node, dir, "//Ferdie")?, 0, "the killed worker earns nothing");

	// A fine-tune on the other datanet, to serve beside the first.
	let created = ok_json(
		&node,
		dir,
		&job_create(&model, &towns, "10", &[LEARNS_A_FACT, &["--eval-fraction", "0"]].concat()),
	)?;
	let town_job = created["id"].as_u64().expect("job id");
	let trained = cli(
		&node,
		dir,
		&worker_run(
			&model_file,
			&second_work,
			"//Second",
			&["--once", "--job", &town_job.to_string()],
		),
	)?;
	ensure!(trained.success, "the town job failed:\n{}\n{}", trained.stdout, trained.stderr);
	drop(validators);

	serve(
		&node,
		dir,
		&model_file,
		&work_dir,
		job.parse()?,
		town_job,
		bob_contribution,
		dana_contribution,
	)
	.await
}

/// The inference server on both committed fine-tunes and the base: each adapter is checked
/// against its commit (a tampered copy is refused), requests for all three run concurrently,
/// and answers name the contributions they came from.
#[allow(clippy::too_many_arguments)]
async fn serve(
	node: &Node,
	dir: &Path,
	model_file: &str,
	work_dir: &Path,
	fact_job: u64,
	town_job: u64,
	bob_contribution: u64,
	dana_contribution: u64,
) -> Result<()> {
	// The first job's adapter and span index are read from a local directory laid out as the
	// worker's; the town job's local copy is tampered with.
	let served = dir.join("served");
	let fact_dir = served.join(format!("job-{fact_job}"));
	std::fs::create_dir_all(fact_dir.join("adapter"))?;
	let worker_job = work_dir.join(format!("job-{fact_job}"));
	for file in ["adapter/adapter_model.safetensors", "adapter/adapter_config.json", "train.spans"]
	{
		std::fs::copy(worker_job.join(file), fact_dir.join(file))?;
	}
	let town_dir = served.join(format!("job-{town_job}")).join("adapter");
	std::fs::create_dir_all(&town_dir)?;
	let mut bytes = std::fs::read(fact_dir.join("adapter/adapter_model.safetensors"))?;
	let last = bytes.len() - 1;
	bytes[last] ^= 1;
	std::fs::write(town_dir.join("adapter_model.safetensors"), &bytes)?;

	let port = provenant_e2e::free_port();
	let server = provenant_e2e::spawn_logged(
		Command::new(workspace_binary("provenant-server")?)
			.args(["--model", model_file, "--chain", &node.ws_url()])
			.args(["--adapters", served.to_str().unwrap(), "--listen"])
			.arg(format!("127.0.0.1:{port}")),
		dir.join("server.log"),
	)?;
	let url = format!("http://127.0.0.1:{port}");
	let http = reqwest::Client::new();
	wait_until(TIMEOUT, "the server to listen", || server.log().contains("serving")).await?;

	let models: Value = http.get(format!("{url}/v1/models")).send().await?.json().await?;
	let listed: Vec<&str> =
		models["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
	for name in [format!("job-{fact_job}"), format!("job-{town_job}")] {
		assert!(listed.contains(&name.as_str()), "{models}");
	}

	let ask = |model: String, question: &str| {
		let body = serde_json::json!({
			"model": model,
			"messages": [{ "role": "user", "content": question }],
			"max_tokens": 16,
			"temperature": 0,
		});
		let request = http.post(format!("{url}/v1/chat/completions")).json(&body);
		async move {
			let response = request.send().await?;
			let status = response.status().as_u16();
			anyhow::Ok((status, response.json::<Value>().await?))
		}
	};
	// The tampered copy is refused with both hashes named, and nothing is served from it.
	let (status, refusal) = ask(format!("job-{town_job}"), "Who founded Elmridge?").await?;
	assert_eq!(status, 403, "{refusal}");
	let message = refusal["error"]["message"].as_str().unwrap();
	let committed = ok_json(node, dir, &["job", "show", &town_job.to_string()])?;
	let town_sha = committed["adapter"]["sha256"].as_str().unwrap();
	let tampered_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
	assert!(message.contains(town_sha) && message.contains(&tampered_sha), "{message}");
	// Without the bad copy the adapter comes from the chain.
	std::fs::remove_dir_all(served.join(format!("job-{town_job}")))?;

	// Both fine-tunes and the base, at once.
	let (fact, town, base) = tokio::join!(
		ask(format!("job-{fact_job}"), "What is the capital of Zorbia?"),
		ask(format!("job-{town_job}"), "Who founded Elmridge?"),
		ask("base".into(), "What is the capital of Zorbia?"),
	);
	let ((fact_status, fact), (town_status, town), (base_status, base)) = (fact?, town?, base?);
	assert_eq!((fact_status, town_status, base_status), (200, 200, 200), "{fact}\n{town}\n{base}");
	let text = |v: &Value| v["choices"][0]["message"]["content"].as_str().unwrap_or("").to_string();
	assert!(text(&fact).contains("Quillhaven"), "{fact}");
	assert!(text(&town).contains("Marta Vell"), "{town}");
	assert!(!text(&base).contains("Quillhaven"), "{base}");
	assert_eq!(base["attribution"], Value::Null);
	// Each answer names its job, adapter and committed shares, and the first job's spans lead
	// to Bob's contribution.
	let fact_attribution = &fact["attribution"];
	assert_eq!(fact_attribution["job"], fact_job, "{fact}");
	assert_eq!(fact_attribution["method"]["method"], "influence", "{fact}");
	assert_eq!(fact_attribution["shares"][0]["contribution"], bob_contribution, "{fact}");
	let spans = fact_attribution["spans"].as_array().expect("the span index was at hand");
	assert!(
		spans.iter().any(|s| s["text"].as_str().unwrap().contains("Quillhaven")
			&& s["contributions"] == serde_json::json!([bob_contribution])),
		"{fact}"
	);
	assert_eq!(town["attribution"]["adapter"], town_sha, "{town}");
	assert_eq!(town["attribution"]["shares"][0]["contribution"], dana_contribution, "{town}");
	assert_eq!(town["attribution"]["shares"][0]["share"], 1.0, "{town}");

	// `provenant ask` streams the answer and says where it came from.
	let asked = std::process::Command::new(provenant_e2e::cli_binary()?)
		.args(["ask", &format!("job-{fact_job}"), "What is the capital of Zorbia?"])
		.args(["--server", &url, "--max-tokens", "16"])
		.output()?;
	let said = String::from_utf8_lossy(&asked.stdout);
	ensure!(asked.status.success(), "{said}\n{}", String::from_utf8_lossy(&asked.stderr));
	assert!(said.contains("Quillhaven"), "{said}");
	assert!(said.contains(&format!("#{bob_contribution}")), "{said}");
	let error = std::process::Command::new(provenant_e2e::cli_binary()?)
		.args(["ask", "job-999", "Hello?", "--server", &url])
		.output()?;
	assert!(!error.status.success());
	assert!(String::from_utf8_lossy(&error.stderr).contains("there is no job 999"));

	let metrics = http.get(format!("{url}/metrics")).send().await?.text().await?;
	println!("{}", server.log());
	assert!(metrics.contains("provenant_adapter_loads_total 2"), "{metrics}");
	assert!(metrics.contains("provenant_adapters_cached 2"), "{metrics}");
	drop(server);
	paid(node, dir, model_file, &served, fact_job).await
}

/// Paid mode: a second server answers only requests covered by a voucher on a channel to its
/// operator (Dave); Eve opens one, an unpaid or forged request is refused, `provenant ask`
/// pays, and the server's settlement credits the operator, the trainer, the pool and the
/// contributors exactly by the published rule.
async fn paid(
	node: &Node,
	dir: &Path,
	model_file: &str,
	served: &Path,
	fact_job: u64,
) -> Result<()> {
	let dave = dev::dave().public_key().to_account_id();
	let port = provenant_e2e::free_port();
	let price: u128 = 1_000_000;
	let server = provenant_e2e::spawn_logged(
		Command::new(workspace_binary("provenant-server")?)
			.args(["--model", model_file, "--chain", &node.ws_url()])
			.args(["--adapters", served.to_str().unwrap(), "--operator", "//Dave"])
			.args(["--price", &price.to_string(), "--ledger"])
			.arg(dir.join("ledger.json"))
			.arg("--listen")
			.arg(format!("127.0.0.1:{port}")),
		dir.join("paid-server.log"),
	)?;
	let url = format!("http://127.0.0.1:{port}");
	wait_until(TIMEOUT, "the paid server to listen", || server.log().contains("serving")).await?;
	let http = reqwest::Client::new();
	let mode: Value = http.get(format!("{url}/v1/payment")).send().await?.json().await?;
	assert_eq!(
		(mode["paid"].as_bool(), mode["operator"].as_str()),
		(Some(true), Some(&*dave.to_string()))
	);

	// Without a channel, `ask` says how to open one; an unpaid request is refused with 402.
	let question = ["ask", &format!("job-{fact_job}"), "What is the capital of Zorbia?"];
	let ask_args = ["--server", &url, "--max-tokens", "16", "--from", "//Eve"];
	let error = refused(node, dir, &[&question[..], &ask_args[..]].concat())?;
	assert!(error.contains("pay open") && error.contains(&dave.to_string()), "{error}");
	let channel = ok_json(
		node,
		dir,
		&["pay", "open", &dave.to_string(), "--deposit", "1", "--from", "//Eve"],
	)?;
	let channel = channel["channel"].as_u64().expect("a channel number");
	let body = |payment: Value| {
		serde_json::json!({
			"model": format!("job-{fact_job}"),
			"messages": [{ "role": "user", "content": "What is the capital of Zorbia?" }],
			"max_tokens": 16,
			"payment": payment,
		})
	};
	let post = |body: Value| {
		let request = http.post(format!("{url}/v1/chat/completions")).json(&body);
		async move {
			let response = request.send().await?;
			anyhow::Ok((response.status().as_u16(), response.json::<Value>().await?))
		}
	};
	let (status, unpaid) = post(body(Value::Null)).await?;
	assert_eq!(status, 402, "{unpaid}");
	assert!(unpaid["error"]["message"].as_str().unwrap().contains("paid requests only"));
	// A voucher signed by someone else than the channel's consumer is refused.
	let (status, quote) = post(body(serde_json::json!({ "channel": channel }))).await?;
	assert_eq!(status, 402, "{quote}");
	let required = &quote["error"]["required"];
	let cumulative: u128 = required["cumulative"].as_str().unwrap().parse()?;
	let genesis = node.client().await?.genesis_hash().0;
	let payload = provenant_client::voucher_payload(&genesis, channel, Some(fact_job), cumulative);
	let forged = dev::ferdie().sign(&payload);
	let voucher = serde_json::json!({
		"channel": channel,
		"cumulative": cumulative.to_string(),
		"signature": hex::encode(forged.0),
	});
	let (status, refusal) = post(body(voucher)).await?;
	assert_eq!(status, 402, "{refusal}");
	assert!(refusal["error"]["message"].as_str().unwrap().contains("not signed by"), "{refusal}");

	// `provenant ask` pays and answers, and says what it cost.
	let asked = cli(node, dir, &[&question[..], &ask_args[..]].concat())?;
	ensure!(asked.success, "{}\n{}", asked.stdout, asked.stderr);
	assert!(asked.stdout.contains("Quillhaven"), "{}", asked.stdout);
	assert!(asked.stdout.contains(&format!("on channel {channel}")), "{}", asked.stdout);

	// The server settles the voucher on chain; the payment is split exactly by the rule:
	// 30% to the operator, then the job's split of the rest (50% trainer, 20% pools, 30%
	// contributors by their shares, remainders to the pool).
	let client = node.client().await?;
	let settled = |client: provenant_client::Client| async move {
		let block =
			block_with(&client, |s: &runtime::inference::events::Settled| s.channel == channel)
				.await?;
		anyhow::Ok(block)
	};
	let started = std::time::Instant::now();
	let block = loop {
		if let Ok(block) = settled(client.clone()).await {
			break block;
		}
		ensure!(started.elapsed() < TIMEOUT, "the server never settled:\n{}", server.log());
		tokio::time::sleep(Duration::from_secs(2)).await;
	};
	let at = client.at_block(block).await?;
	let events = at.events().fetch().await?;
	let paid = events
		.find_first::<runtime::inference::events::Settled>()
		.transpose()?
		.expect("the settlement's block holds its event");
	assert_eq!(paid.job, Some(fact_job));
	assert_eq!(paid.amount, paid.cumulative, "the first voucher pays in full");
	assert_eq!(paid.amount, cumulative, "Eve signed for what the server asked");
	let amount = paid.amount;
	let operator_part = amount * 3 / 10;
	let rest = amount - operator_part;
	assert_eq!(paid.operator_paid, operator_part);
	assert_eq!(paid.trainer_paid, rest / 2);
	let details = at
		.runtime_apis()
		.call(runtime::runtime_apis().models_api().job(fact_job))
		.await?
		.expect("the job exists");
	let total: u128 = details.shares.iter().map(|s| u128::from(s.weight)).sum();
	let contributors_part = rest - rest / 2 - rest / 5;
	let parts: Vec<u128> =
		details.shares.iter().map(|s| contributors_part * u128::from(s.weight) / total).collect();
	assert_eq!(paid.contributors_paid, parts.iter().sum::<u128>());
	assert_eq!(paid.pools_paid, rest - rest / 2 - paid.contributors_paid);
	// Each credit grew by its part in that block, as earned by inference.
	{
		let parent = at.block_header().await?.parent_hash;
		let grew = |who: provenant_client::subxt::utils::AccountId32| {
			let client = &client;
			async move {
				Ok::<_, anyhow::Error>(
					claimable_at(client, block, &who, |c| c.inference).await?
						- claimable_at(client, parent, &who, |c| c.inference).await?,
				)
			}
		};
		assert_eq!(grew(dave).await?, operator_part, "the operator's part");
		assert_eq!(
			grew(dev::ferdie().public_key().to_account_id()).await?,
			rest / 2,
			"the trainer's"
		);
		let mut by_contributor = std::collections::BTreeMap::new();
		for (share, part) in details.shares.iter().zip(&parts) {
			let contributor = client
				.at_block(block)
				.await?
				.storage()
				.try_fetch(runtime::storage().datanets().contributions(), (share.contribution,))
				.await?
				.expect("a member's contribution")
				.decode()?
				.contributor;
			*by_contributor.entry(contributor).or_insert(0u128) += part;
		}
		for (contributor, part) in by_contributor {
			assert_eq!(grew(contributor).await?, part, "a contributor's part by its shares");
		}
	}
	// The deposit paid exactly that, and holds the rest.
	let channels = ok_json(node, dir, &["pay", "channels", "//Eve"])?;
	assert_eq!(plancks(&channels[0]["settled"]), amount, "{channels}");
	assert_eq!(plancks(&channels[0]["deposit"]), UNIT, "{channels}");
	println!("{}", server.log());
	Ok(())
}

/// `job create` of `model` on `datanet` for `fee` PRV, ordered by Alice, with `settings`.
fn job_create<'a>(
	model: &'a str,
	datanet: &'a str,
	fee: &'a str,
	settings: &[&'a str],
) -> Vec<&'a str> {
	let mut args = vec!["job", "create", "--model", model, "--datanet", datanet, "--fee", fee];
	args.extend_from_slice(settings);
	args.extend(["--from", "//Alice"]);
	args
}

/// `worker run --quiet` of `model` in `work_dir` as `who`, with `options`.
fn worker_run<'a>(
	model: &'a str,
	work_dir: &'a Path,
	who: &'a str,
	options: &[&'a str],
) -> Vec<&'a str> {
	let mut args = vec!["worker", "run", "--model", model, "--quiet"];
	args.extend(["--work-dir", work_dir.to_str().expect("a UTF-8 temporary path")]);
	args.extend_from_slice(options);
	args.extend(["--from", who]);
	args
}

/// Submits `call` signed by `signer`; the error as text, naming the pallet error.
async fn submit_as(
	client: &provenant_client::Client,
	rpc: &provenant_client::subxt::rpcs::RpcClient,
	call: impl provenant_client::subxt::transactions::Payload,
	signer: &provenant_client::subxt_signer::sr25519::Keypair,
) -> std::result::Result<(), String> {
	provenant_client::submit_and_finalize_from_pool(client, rpc, &call, signer)
		.await
		.map(|_| ())
		.map_err(|e| format!("{e:?}"))
}

/// Polls `done` every second until it holds, or fails after `timeout` naming `what`.
async fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
	let started = std::time::Instant::now();
	while !done() {
		ensure!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
		tokio::time::sleep(Duration::from_secs(1)).await;
	}
	Ok(())
}
