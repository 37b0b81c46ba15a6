// ModelFactory in a real browser: launch a fine-tune on a datanet whose files validators
// accepted, watch a trainer worker's loss arrive, refine the run, compare the two, and chat with
// the result. The Rust harness `tests/tests/studio` prepares that chain (FACTS_DATANET) and
// starts the worker, then runs this file after studio.test.mjs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { provenant } from "@polkadot-api/descriptors";
import { createWsClient } from "polkadot-api/ws";
import WebSocket from "ws";
import { moduleBits } from "../src/jobspec.js";
import { formatAmount } from "../src/amount.js";
import { browserSession, devPair } from "./browser.mjs";

/** Plancks as Studio writes them on the dev chain. */
const formatPrv = (plancks) => formatAmount({ decimals: 12, symbol: "PRV" }, plancks);

const FACTS = Number(process.env.FACTS_DATANET);
let session;
let client;
let api;

before(async () => {
  assert.ok(Number.isInteger(FACTS), "the harness names the prepared datanet in FACTS_DATANET");
  session = await browserSession();
  client = createWsClient(process.env.PROVENANT_URL, { websocketClass: WebSocket });
  api = client.getTypedApi(provenant);
});

after(async () => {
  await session?.close();
  client?.destroy();
});

/** Fills the form with settings that train in seconds on two small files, holding out a third. */
async function quickSettings(page) {
  for (const [label, value] of [
    ["Learning rate", "0.002"],
    ["Epochs", "20"],
    ["Batch size (blocks)", "1"],
    ["Block length (tokens)", "32"],
    ["Dropout", "0"],
    ["Held out for eval loss", "0.34"],
  ]) {
    await page.getByLabel(label, { exact: true }).fill(value);
  }
  for (const module of ["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]) await page.getByLabel(module).check();
}

/** Waits for a run's page to show it done, and at least two loss points on the way. */
async function watchRun(page) {
  const { see } = session;
  await see(page, /^Step \d+ of \d+/, 180_000);
  await page.waitForFunction(
    () => Number(/Step (\d+)/.exec(document.querySelector("[data-testid=progress]")?.textContent ?? "")?.[1]) >= 2,
    null,
    { timeout: 180_000 },
  );
  await page.getByTestId("result").waitFor({ timeout: 240_000 });
}

describe("ModelFactory", () => {
  test("a run is launched, trained by a worker with its loss shown live, refined and compared, then chatted with", async () => {
    const { page, errors } = await session.open("/factory");
    const { see, shoot, assertLabelled } = session;
    await see(page, "No run yet. Launch the first one below.");
    await page.getByLabel(new RegExp(`#${FACTS} Facts \\(3 accepted`)).check();

    // The trainer's own rules, as you type.
    await page.getByLabel("Rank r", { exact: true }).fill("0");
    await see(page, "rank: must be at least 1");
    assert.equal(await page.getByRole("button", { name: "Launch run" }).isDisabled(), true);
    await page.getByLabel("Rank r", { exact: true }).fill("8");
    await page.getByLabel("Alpha α").fill("16");
    await quickSettings(page);
    await see(page, /About [\d,]+ tokens to train: .* the trainer measured for SmolLM2-135M on 2 CPU cores/);
    await assertLabelled(page);
    await shoot(page, "factory");

    await page.getByRole("button", { name: "Launch run" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByRole("heading", { name: "Run 0" }).waitFor({ timeout: 30_000 });
    const job = await api.query.Models.Jobs.getValue(0n, { at: "best" });
    assert.equal(job.creator, devPair("//Alice").address);
    assert.equal(job.fee, 100n * 10n ** 12n);
    assert.deepEqual(job.training.parts.map((p) => p.datanet), [FACTS]);
    assert.equal(job.params.learning_rate, 2_000_000);
    assert.equal(job.params.epochs, 20);
    assert.equal(job.params.rank, 8);
    assert.equal(job.params.targets, moduleBits(["q_proj", "v_proj", "o_proj", "up_proj", "down_proj"]));

    await watchRun(page);
    const result = await api.query.Models.Results.getValue(0n, { at: "best" });
    assert.match(await page.getByTestId("adapter").textContent(), new RegExp(result.adapter));
    assert.equal(await page.locator(".chart").count(), 2, "the loss and the learning rate are drawn");
    await page.getByRole("img", { name: "Training and held-out loss of run 0 by step" }).waitFor();
    const heldOut = /^Held-out loss (\d+\.\d+) at step (\d+) \((\d+) measured so far\)$/.exec(
      await page.getByTestId("eval-progress").textContent(),
    );
    assert.ok(heldOut, "the held-out loss is shown as the worker measures it");
    assert.ok(Number(heldOut[3]) >= 2, `at least two held-out points, got ${heldOut[3]}`);
    assert.equal(heldOut[2], String(result.steps), "the last one is measured after the last step");
    assert.ok(Math.abs(Number(heldOut[1]) - result.eval_loss / 1e6) < 1e-4, "and it is the eval loss committed on chain");

    // Test it on text against its base: the page shows what the server computes.
    const texts = [
      "What is the capital of Zorbia? The capital of Zorbia is Quillhaven.",
      "The river Elm floods every spring and feeds the marshes.",
      "The lighthouse of Quillhaven has guided ships through the fog since 1840.",
    ];
    const direct = async (model, input) =>
      (
        await (
          await fetch(new URL("/v1/evaluate", process.env.STUDIO_URL), {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model, input }),
          })
        ).json()
      ).loss.toFixed(4);
    const losses = page.getByRole("table", { name: "Held-out loss" }).locator("tbody tr td:nth-child(3)");
    // The file the worker held out, chosen in the browser by the worker's rule: the chain says
    // whose file it is, and the text is that file's.
    await page.getByRole("button", { name: "Use the run's held-out files" }).click();
    await page.getByTestId("held-out-files").waitFor({ timeout: 30_000 });
    const named = /^The files this run held out: #(\d+), 1 of 3\.$/.exec(await page.getByTestId("held-out-files").textContent());
    assert.ok(named, "one of the three files is named");
    const heldOutText = await page.getByLabel("Held-out text", { exact: true }).inputValue();
    const owner = ["//Bob", "//Charlie", "//Dave"][texts.indexOf(heldOutText)];
    assert.ok(owner, `the text is one of the files: ${heldOutText}`);
    const record = await api.query.Datanets.Contributions.getValue(BigInt(named[1]), { at: "best" });
    assert.equal(record.contributor, devPair(owner).address, "and it is the named contribution's");
    await page.getByRole("button", { name: "Evaluate against the base model" }).click();
    await see(page, /^The fine-tune's loss is [\d.]+% (lower|higher) than its base's on this text/, 120_000);
    assert.deepEqual(await losses.allTextContents(), [await direct("job-0", [heldOutText]), await direct("base", [heldOutText])]);

    // On text from its training data, it does better than its base.
    await page.getByLabel("Held-out text", { exact: true }).fill(texts.join("\n\n"));
    await page.getByRole("button", { name: "Evaluate against the base model" }).click();
    await see(page, /^The fine-tune's loss is [\d.]+% lower than its base's on this text\.$/, 120_000);
    assert.deepEqual(await losses.allTextContents(), [await direct("job-0", texts), await direct("base", texts)], "the losses the server gives");
    await shoot(page, "run");

    // Refine: the old run's settings, one changed, launched as a new run (compared below while
    // the worker takes it on).
    await page.getByRole("link", { name: "Refine: a new run from these settings" }).click();
    await see(page, "The settings of run 0; change some, then launch.");
    assert.equal(await page.getByLabel("Epochs", { exact: true }).inputValue(), "20");
    await page.getByLabel("Epochs", { exact: true }).fill("10");
    await see(page, "Changed from run 0: Epochs 20 → 10");
    // The time estimate now uses the rate the worker trained run 0 at.
    await see(page, /at the \d+ tokens\/s this chain's worker trained this model at in run 0\./);
    await page.getByRole("button", { name: "Launch the refined run" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByRole("heading", { name: "Run 1" }).waitFor({ timeout: 30_000 });
    assert.equal((await api.query.Models.Jobs.getValue(1n, { at: "best" })).params.epochs, 10);

    // Stop run 1 once its worker trains it: the worker is paid the trainer's part of the fee for
    // its compute, the rest comes back, and the loss so far stays on the page.
    await see(page, /^Step \d+ of \d+/, 180_000);
    const at = { at: "best" };
    const fee = (await api.query.Models.Jobs.getValue(1n, at)).fee;
    const workerPay = (fee * BigInt((await api.query.Models.CurrentFeeSplit.getValue(at)).trainer)) / 1_000_000_000n;
    await see(page, `Stopping pays the worker the trainer's part of the fee for the compute it spent (${formatPrv(workerPay)})`);
    const ferdie = devPair("//Ferdie").address;
    const alice = devPair("//Alice").address;
    const training = async () => (await api.query.Rewards.Claimable.getValue(ferdie, at)).training;
    const free = async () => (await api.query.System.Account.getValue(alice, at)).data.free;
    const [trainingBefore, freeBefore] = [await training(), await free()];
    await page.getByRole("button", { name: "Stop the run" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByTestId("state").getByText("cancelled", { exact: true }).waitFor({ timeout: 60_000 });
    assert.equal((await api.query.Models.Jobs.getValue(1n, at)).state.type, "Cancelled");
    assert.equal(await training(), trainingBefore + workerPay, "the worker's pay, as training");
    const back = (await free()) - freeBefore;
    assert.ok(back <= fee - workerPay && back > fee - workerPay - 10n ** 12n, `the rest, less the fee of one call: ${back}`);
    assert.match(await page.getByTestId("progress").textContent(), /^Step \d+ of \d+/);
    assert.equal(await page.getByRole("button", { name: "Stop the run" }).count(), 0);
    await shoot(page, "run-stopped");

    // Compare the two.
    await page.goto(new URL("/factory", process.env.STUDIO_URL).href);
    await page.getByLabel("Compare run 0").check();
    await page.getByLabel("Compare run 1").check();
    await page.getByRole("button", { name: "Compare the two chosen runs" }).click();
    await page.getByRole("heading", { name: "Run 0 and run 1" }).waitFor();
    await page.getByRole("img", { name: "Training and held-out loss of runs 0 and 1 by step" }).waitFor();
    const epochs = page.getByRole("row", { name: /^epochs/ });
    assert.equal(await epochs.getAttribute("class"), "differs");
    assert.deepEqual(await epochs.getByRole("cell").allTextContents(), ["20", "10"]);
    assert.equal(await page.getByRole("row", { name: /^rank/ }).getAttribute("class"), null);
    await shoot(page, "compare");

    // Chat with the fine-tune, beside its base.
    await page.goto(new URL("/runs/0", process.env.STUDIO_URL).href);
    await page.getByRole("link", { name: "Chat with it" }).click();
    assert.equal(await page.getByLabel("Model", { exact: true }).inputValue(), "job-0");
    await page.getByLabel("Longest answer (tokens)").fill("12");
    await page.getByLabel("Your question").fill("What is the capital of Zorbia?");
    await page.getByRole("button", { name: "Ask" }).click();
    await see(page, /From job 0 \(adapter [0-9a-f]{12}…\), trained on contributions credited by (tokens|influence)/, 120_000);
    await see(page, "The base model: no fine-tune data to credit.", 60_000);
    await shoot(page, "chat-fine-tune");

    // Verify run 0's provenance in the browser, by number and by its adapter's hash.
    await page.goto(new URL("/runs/0", process.env.STUDIO_URL).href);
    await page.getByRole("link", { name: "Verify its provenance" }).click();
    await page.getByRole("heading", { name: "Provenance of run 0" }).waitFor({ timeout: 60_000 });
    await see(page, /^Verified: all \d+ checks passed, computed in this browser\.$/, 60_000);
    const members = await api.apis.ModelsApi.training_set(0n, 0n, 100, { at: "best" });
    const rows = page.getByRole("table", { name: "Training set" }).locator("tbody tr");
    assert.equal(await rows.count(), members.length, "one row per member of the set on chain");
    assert.equal(members.length, 3);
    assert.deepEqual(await rows.locator("td:last-child").allTextContents(), ["✓ proved", "✓ proved", "✓ proved"]);
    const contributors = page.getByRole("list", { name: "Contributors and their shares" }).getByRole("listitem");
    assert.equal(await contributors.count(), 3, "Bob, Charlie and Dave");
    const percents = (await contributors.allTextContents()).map((t) => Number(/([\d.]+)%/.exec(t)[1]));
    assert.ok(Math.abs(percents.reduce((a, b) => a + b, 0) - 100) < 0.05, `shares add up to 100%: ${percents}`);
    await assertLabelled(page);
    await shoot(page, "provenance");

    // Files the user holds, hashed in the browser.
    const adapterFile = join(process.env.WORKER_DIR, "job-0", "adapter", "adapter_model.safetensors");
    const adapterInput = page.getByLabel("Your copy of the adapter (adapter_model.safetensors)");
    await adapterInput.setInputFiles(adapterFile);
    await see(page, /adapter_model\.safetensors \([\d.]+ [KM]i?B\): It is the committed adapter/);
    const tampered = readFileSync(adapterFile);
    tampered[tampered.length - 1] ^= 1;
    await adapterInput.setInputFiles({ name: "tampered.safetensors", mimeType: "application/octet-stream", buffer: tampered });
    await see(page, /tampered\.safetensors .*: It is not the committed adapter: its sha256 is [0-9a-f]{64}, the run committed/);
    const memberInput = page.getByLabel("A file: was it in the training set?");
    await memberInput.setInputFiles(process.env.RIVER_FILE);
    await see(page, /river\.txt .*: Yes: it is contribution \d+, position \d of datanet \d+'s log, in the training set\./);
    await memberInput.setInputFiles({ name: "other.txt", mimeType: "text/plain", buffer: Buffer.from("Never contributed.") });
    await see(page, "other.txt (18 B): No: no file with this content is in the training set.");

    const sha = (await api.query.Models.Results.getValue(0n, { at: "best" })).adapter;
    await page.goto(new URL(`/provenance/${sha.slice(2)}`, process.env.STUDIO_URL).href);
    await see(page, /^Verified: all \d+ checks passed/, 60_000);
    assert.ok(await page.getByRole("heading", { name: "Provenance of run 0" }).isVisible());
    await page.goto(new URL(`/provenance/${"0".repeat(64)}`, process.env.STUDIO_URL).href);
    await see(page, `No committed run has an adapter with sha256 0x${"0".repeat(64)}.`, 30_000);
    await page.goto(new URL("/provenance/1", process.env.STUDIO_URL).href);
    await see(page, "Run 1 is cancelled, not committed: it has no adapter to verify yet.", 30_000);
    assert.deepEqual(errors.map(String), [], "no script error on any page");
    await page.context().close();
  });

  test("a paid server's answers are paid through a wallet, settled on chain, and claimed by source", async () => {
    const paidUrl = process.env.PAID_URL;
    assert.ok(paidUrl, "the harness starts a paid server (operator Eve) and names it in PAID_URL");
    const { page, errors } = await session.open(new URL("/chat?model=job-0", paidUrl).href, {
      accounts: [{ path: "//Charlie", name: "Charlie in a wallet" }],
    });
    const { see, shoot, assertLabelled } = session;
    const at = { at: "best" };
    const [charlie, eve, ferdie] = ["//Charlie", "//Eve", "//Ferdie"].map((path) => devPair(path).address);
    await page.getByRole("button", { name: "Connect polkadot-js" }).click();
    await page.getByLabel("Account").selectOption({ label: "Charlie in a wallet (polkadot-js)" });
    await see(page, /^This server charges for answers: 0\.000001 PRV per token, paid to operator/);
    await see(page, "Charlie in a wallet has no open channel to this operator yet.");
    await see(page, "Open a payment channel above to ask this server.");
    assert.equal(await page.getByLabel("Your question").count(), 0, "nothing to ask before a channel");
    await page.getByLabel("Deposit (PRV)").fill("0");
    await see(page, "The deposit must be more than zero.");
    assert.equal(await page.getByRole("button", { name: "Open a payment channel" }).isDisabled(), true);
    await page.getByLabel("Deposit (PRV)").fill("1");
    await page.getByRole("button", { name: "Open a payment channel" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await see(page, /^Paying from channel \d+: deposit 1 PRV, of which 0 PRV is settled\.$/, 60_000);
    const opened = (await api.query.Inference.Channels.getEntries(at)).filter((c) => c.value.consumer === charlie);
    assert.equal(opened.length, 1);
    assert.equal(opened[0].value.operator, eve);
    assert.equal(opened[0].value.deposit, 10n ** 12n);
    const channel = opened[0].keyArgs[0];

    // Each column's answer is paid with its own voucher, which the wallet signs.
    await page.getByLabel("Longest answer (tokens)").fill("8");
    await page.getByLabel("Your question").fill("What is the capital of Zorbia?");
    await page.getByRole("button", { name: "Ask" }).click();
    const paid = page.getByTestId("paid");
    await paid.nth(1).waitFor({ timeout: 120_000 });
    for (const line of await paid.allTextContents()) {
      assert.match(line, new RegExp(`^Paid [\\d.]+ PRV for \\d+ tokens at 0\\.000001 PRV each, on channel ${channel}\\.$`));
    }
    await see(page, /From job 0 \(adapter [0-9a-f]{12}…\)/);
    await assertLabelled(page);
    await shoot(page, "chat-paid");

    // The server settles both vouchers on chain; the chain accepted the wallet's signatures.
    let settled = [];
    for (let tries = 0; settled.length < 2; tries++) {
      assert.ok(tries < 60, `the server settled ${settled.length} of the 2 vouchers in a minute`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      settled = (await api.query.Inference.Channels.getValue(channel, at)).settled;
    }
    const share = BigInt(await api.query.Inference.OperatorShare.getValue(at));
    // The base model's answer pays the operator alone; the fine-tune's pays it its share first.
    const operatorPart = settled.reduce(
      (sum, { job, cumulative }) => sum + (job === undefined ? cumulative : (cumulative * share) / 1_000_000_000n),
      0n,
    );
    const eveClaims = await api.query.Rewards.Claimable.getValue(eve, at);
    assert.equal(eveClaims.inference, operatorPart, "the operator's parts, under inference");
    assert.ok((await api.query.Rewards.Claimable.getValue(ferdie, at)).inference > 0n, "the trainer's share of an answer");

    // Eve sees that on her Rewards page, by source, and claims it all.
    await page.goto(new URL("/rewards", paidUrl).href);
    await page.getByLabel("Account").selectOption({ label: "Eve (dev)" });
    await page.getByTestId("source-inference").locator("td.amount").getByText(formatPrv(operatorPart), { exact: true }).waitFor();
    const total = Object.values(eveClaims).reduce((a, b) => a + b, 0n);
    await page.getByTestId("claimable").getByText(formatPrv(total), { exact: true }).waitFor();
    await shoot(page, "rewards-by-source");
    await page.getByRole("button", { name: "Claim everything" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByTestId("claimable").getByText("0 PRV", { exact: true }).waitFor({ timeout: 60_000 });
    assert.deepEqual(Object.values(await api.query.Rewards.Claimable.getValue(eve, at)), [0n, 0n, 0n, 0n, 0n]);
    assert.deepEqual(errors.map(String), [], "no script error on any page");
    await page.context().close();
  });
});
