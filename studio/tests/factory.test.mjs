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
import { browserSession, devPair } from "./browser.mjs";

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
    await see(page, /About [\d,]+ tokens to train/);
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
    await page.getByLabel("Held-out text", { exact: true }).fill(texts.join("\n\n"));
    await page.getByRole("button", { name: "Evaluate against the base model" }).click();
    await see(page, /^The fine-tune's loss is [\d.]+% lower than its base's on this text\.$/, 120_000);
    const direct = async (model) =>
      (
        await (
          await fetch(new URL("/v1/evaluate", process.env.STUDIO_URL), {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model, input: texts }),
          })
        ).json()
      ).loss.toFixed(4);
    const shown = await page.getByRole("table", { name: "Held-out loss" }).locator("tbody tr td:nth-child(3)").allTextContents();
    assert.deepEqual(shown, [await direct("job-0"), await direct("base")], "the losses the server gives");
    await shoot(page, "run");

    // Refine: the old run's settings, one changed, launched as a new run (compared below while
    // the worker takes it on).
    await page.getByRole("link", { name: "Refine: a new run from these settings" }).click();
    await see(page, "The settings of run 0; change some, then launch.");
    assert.equal(await page.getByLabel("Epochs", { exact: true }).inputValue(), "20");
    await page.getByLabel("Epochs", { exact: true }).fill("10");
    await see(page, "Changed from run 0: Epochs 20 → 10");
    await page.getByRole("button", { name: "Launch the refined run" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByRole("heading", { name: "Run 1" }).waitFor({ timeout: 30_000 });
    assert.equal((await api.query.Models.Jobs.getValue(1n, { at: "best" })).params.epochs, 10);

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
    await see(page, /^Run 1 is (waiting for a worker|training \(worker .*\)|done), not committed|^Verified/, 30_000);
    assert.deepEqual(errors.map(String), [], "no script error on any page");
    await page.context().close();
  });
});
