// Studio in a real browser (Debian's Chromium, driven by playwright-core) against the real
// stack: a dev node and the inference server serving Studio's production build. The Rust
// harness `tests/tests/studio` starts both and sets STUDIO_URL and PROVENANT_URL; run it with
// `cargo test --release -p provenant-e2e --test studio`.
//
// Each step does what a person would and checks what they would see, or what the chain holds
// after. Screenshots of every page at desktop and phone widths go to tests/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { provenant } from "@polkadot-api/descriptors";
import { createWsClient } from "polkadot-api/ws";
import { getPolkadotSigner } from "polkadot-api/signer";
import WebSocket from "ws";
import { browserSession, devPair } from "./browser.mjs";

const STUDIO_URL = process.env.STUDIO_URL;
const CHAIN_URL = process.env.PROVENANT_URL;

let session;
let client;
let api;
let open;
let shoot;
let assertLabelled;
let see;

before(async () => {
  session = await browserSession();
  ({ open, shoot, assertLabelled, see } = session);
  client = createWsClient(CHAIN_URL, { websocketClass: WebSocket });
  api = client.getTypedApi(provenant);
});

after(async () => {
  await session?.close();
  client?.destroy();
});

/** Resolves when the node imports its next best block. */
function nextBestBlock() {
  return new Promise((resolve) => {
    let seen = 0;
    const subscription = client.bestBlocks$.subscribe(() => {
      // The first value is the current block, delivered at once.
      if (++seen === 2) {
        subscription.unsubscribe();
        resolve();
      }
    });
  });
}

const RATATOUILLE = "Ratatouille: aubergine, courgette, tomato, pepper.\n";

const bestEntries = async () => (await api.query.Datanets.Datanets.getEntries({ at: "best" })).length;

describe("Studio", () => {
  let datanetId;

  test("opens on the datanets, says there are none yet, and every page has its own address", async () => {
    const { page, errors } = await open("/");
    await page.getByRole("heading", { name: "Datanets" }).waitFor();
    assert.match(page.url(), /\/datanets$/);
    await page.getByText("No datanet yet. Create the first one below.").waitFor();
    await assertLabelled(page);
    await shoot(page, "datanets-empty");

    // A shared link to a page opens that page, and a wrong one says so.
    await page.goto(new URL("/datanets/99", STUDIO_URL).href);
    await page.getByText("There is no datanet 99 on this chain.").waitFor();
    await page.goto(new URL("/no-such-page", STUDIO_URL).href);
    await page.getByText("No page here.").waitFor();
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test("provenance explains that nothing is committed yet, and refuses what is not a run or a hash", async () => {
    const { page, errors } = await open("/provenance");
    await see(page, "No run is committed yet: a run gets an adapter to verify once a worker trains it.");
    const verify = page.getByRole("button", { name: "Verify" });
    assert.equal(await verify.isDisabled(), true, "nothing typed, nothing to verify");
    await page.getByLabel("Adapter sha256 or run number").fill("not-a-hash");
    await see(page, "A run number, or the adapter file's sha256 in 64 hex digits.");
    assert.equal(await verify.isDisabled(), true);
    await page.getByLabel("Adapter sha256 or run number").fill("7");
    await verify.click();
    await see(page, "There is no run 7 on this chain.");
    assert.match(page.url(), /\/provenance\/7$/, "the check has its own address");
    await assertLabelled(page);
    await shoot(page, "provenance-missing");
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  test("the keyboard reaches the navigation first, through a skip link", async () => {
    const { page } = await open("/datanets");
    await page.getByRole("heading", { name: "Datanets" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    for (const link of ["Datanets", "Contribute", "Validate", "ModelFactory", "Rewards", "Chat", "Provenance"]) {
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.textContent), link);
    }
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.id), "account");
    await page.context().close();
  });

  test("the create form checks the published rules as you type", async () => {
    const { page } = await open("/datanets");
    const create = page.getByRole("button", { name: "Create datanet" });
    await create.waitFor();
    // Nothing typed yet: no name, so nothing can be sent.
    assert.equal(await create.isDisabled(), true);

    await page.getByLabel("Name").fill("x");
    await page.getByLabel("Name").fill("");
    await page.getByText("A datanet needs a name.").waitFor();
    await page.getByLabel("Name").fill("Recipes");

    const maxFile = await api.constants.Datanets.MaxFileBytes();
    await page.getByLabel("Largest file (MiB)").fill(String(Math.ceil(maxFile / 1048576) + 1));
    await page.getByText(/The chain admits files of at most/).waitFor();
    await page.getByLabel("Largest file (MiB)").fill("2");
    await page.getByLabel(/Admitted per day/).fill("1");
    await page.getByText("The daily cap must hold at least one largest file.").waitFor();
    assert.equal(await create.isDisabled(), true);

    await page.getByLabel(/Admitted per day/).fill("10");
    for (const format of ["txt", "jsonl", "csv", "pdf", "docx"]) await page.getByLabel(format).uncheck();
    await page.getByText("Admit at least one format.").waitFor();
    await page.getByLabel("jsonl").check();
    assert.equal(await create.isDisabled(), false);
    await page.context().close();
  });

  test("a wallet extension's account creates a datanet: fee first, then the result, then its page", async () => {
    const { page, signed } = await open("/datanets", { accounts: [{ path: "//Alice", name: "Alice in a wallet" }] });
    await page.getByRole("button", { name: "Connect polkadot-js" }).click();
    await page.getByLabel("Account").selectOption({ label: "Alice in a wallet (polkadot-js)" });

    await page.getByLabel("Name").fill("Recipes");
    await page.getByLabel("Summary").fill("Home recipes, one per file");
    await page.getByLabel("Tags").fill("food, french");
    await page.getByLabel("Largest file (MiB)").fill("1");
    await page.getByLabel(/Admitted per day/).fill("8");
    await page.getByRole("button", { name: "Create datanet" }).click();

    // The fee is shown before anything is signed.
    const fee = await page.getByTestId("fee").textContent();
    assert.match(fee, /^[\d,.]+ PRV$/);
    assert.equal(signed.length, 0, "nothing is signed before the user confirms");
    await shoot(page, "datanet-create-confirm");
    await page.getByRole("button", { name: "Sign and submit" }).click();

    // Studio opens the new datanet's page once the chain has it.
    await page.getByRole("heading", { name: /Recipes/ }).waitFor({ timeout: 60_000 });
    datanetId = Number(page.url().split("/").pop());
    assert.equal(signed.length, 1, "the extension signed exactly once");

    const onChain = await api.query.Datanets.Datanets.getValue(datanetId, { at: "best" });
    assert.equal(onChain.owner, devPair("//Alice").address);
    assert.equal(new TextDecoder().decode(onChain.metadata.name), "Recipes");
    assert.equal(onChain.caps.max_file_bytes, 1048576);
    assert.equal(onChain.caps.daily_bytes, 8n * 1048576n);
    await page.getByText("txt, jsonl, csv, pdf, docx").waitFor();
    await page.getByText("No file has been contributed yet.").waitFor();
    await page.context().close();
  });

  test("an account that cannot pay is refused in words, and nothing changes", async () => {
    const { page } = await open("/datanets", { accounts: [{ path: "//Nobody", name: "Empty wallet" }] });
    await page.getByRole("button", { name: "Connect polkadot-js" }).click();
    await page.getByLabel("Account").selectOption({ label: "Empty wallet (polkadot-js)" });
    const before = await bestEntries();
    await page.getByLabel("Name").fill("Never made");
    await page.getByRole("button", { name: "Create datanet" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await see(page, "The chain refused the transaction: Invalid.Payment (the account cannot pay the fee)");
    assert.equal(await bestEntries(), before);
    await page.context().close();
  });

  test("a contribution appears on its datanet's page with its verdict, live", async () => {
    const { page } = await open(`/datanets/${datanetId}`);
    await page.getByText("No file has been contributed yet.").waitFor();

    const bob = devPair("//Bob");
    const signer = getPolkadotSigner(bob.publicKey, "Sr25519", bob.sign);
    const data = new TextEncoder().encode(RATATOUILLE);
    const result = await api.tx.Datanets.submit({ datanet: datanetId, data }).signAndSubmit(signer);
    assert.equal(result.ok, true);

    const row = page.getByRole("row", { name: /Pending/ });
    await row.waitFor({ timeout: 30_000 });
    const cells = await row.getByRole("cell").allTextContents();
    assert.equal(cells[2], "txt");
    assert.equal(cells[3], `${data.length} B`);
    assert.equal(cells[1], `${bob.address.slice(0, 6)}…${bob.address.slice(-6)}`);
    await page.getByText("No contributor has a verdict here yet.").waitFor();
    await assertLabelled(page);
    await shoot(page, "datanet");
    await page.context().close();
  });

  test("contribute judges each file by the datanet's rules before any fee, then follows the upload", async () => {
    const { page } = await open(`/contribute?datanet=${datanetId}`);
    await page.getByLabel("Account").selectOption({ label: "Charlie (dev)" });
    const before = await api.query.Datanets.NextContributionId.getValue({ at: "best" });
    const soup = "Leek and potato soup: leeks, potatoes, butter, stock.\n";
    await page.locator("input[type=file]").setInputFiles([
      { name: "ratatouille.txt", mimeType: "text/plain", buffer: Buffer.from(RATATOUILLE) },
      { name: "photo.png", mimeType: "image/png", buffer: Buffer.from("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "latin1") },
      { name: "big.txt", mimeType: "text/plain", buffer: Buffer.alloc(1048577, "a") },
      { name: "soup.txt", mimeType: "text/plain", buffer: Buffer.from(soup) },
    ]);
    const verdict = async (file) => (await page.getByRole("row", { name: new RegExp(file) }).getByRole("cell").nth(2).textContent());
    await see(page, "Passes: txt");
    assert.equal(await verdict("ratatouille.txt"), "Refused: these exact bytes are already in the datanet");
    assert.equal(await verdict("photo.png"), "Refused: its bytes are png (Image data), but the datanet holds Text data");
    assert.equal(await verdict("big.txt"), "Refused: the file is 1048577 bytes; the datanet's per-file cap is 1048576 bytes");
    assert.equal(await page.getByRole("button", { name: /^Upload/ }).count(), 1, "only the file that passes can be sent");
    await shoot(page, "contribute");

    await page.getByRole("button", { name: "Upload soup.txt" }).click();
    await page.getByTestId("fee").waitFor();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await see(page, `#${before}: on chain, waiting for validators`);
    const record = await api.query.Datanets.Contributions.getValue(before, { at: "best" });
    assert.equal(record.contributor, devPair("//Charlie").address);
    assert.equal(record.datanet, datanetId);
    assert.equal(record.size, Buffer.byteLength(soup));
    assert.equal(await api.query.Datanets.NextContributionId.getValue({ at: "best" }), before + 1n, "refused files were never sent");
    await assertLabelled(page);
    await page.context().close();
  });

  test("a validator bonds, judges a file from its preview, and Studio seals and reveals the ballot", async () => {
    const { page } = await open("/validate");
    await page.getByLabel("Account").selectOption({ label: "Dave (dev)" });
    await see(page, "Not a validator yet: bond at least 100 PRV per datanet you serve.");
    await page.getByLabel(/#\d+ Recipes/).check();
    await page.getByLabel("Add to your stake (PRV)").fill("50");
    await see(page, "Serving 1 datanet(s) takes 100 PRV bonded; you would have 50 PRV.");
    assert.equal(await page.getByRole("button", { name: "Bond" }).isDisabled(), true);
    await page.getByLabel("Add to your stake (PRV)").fill("100");
    await page.getByRole("button", { name: "Bond" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await see(page, `Bonded 100 PRV, serving #${datanetId}.`);
    const dave = devPair("//Dave").address;
    const validator = await api.query.Validation.Validators.getValue(dave, { at: "best" });
    assert.equal(validator.bonded, 100n * 10n ** 12n);
    assert.deepEqual(validator.datanets, [datanetId]);

    // A new file arrives while Dave watches.
    const bob = devPair("//Bob");
    const note = "Toast: bread, toasted.\n";
    const submitted = await api.tx.Datanets.submit({ datanet: datanetId, data: new TextEncoder().encode(note) })
      .signAndSubmit(getPolkadotSigner(bob.publicKey, "Sr25519", bob.sign));
    const id = submitted.events.find((e) => e.type === "Datanets" && e.value.type === "ContributionSubmitted").value.value
      .contribution;
    const card = page.getByRole("article", { name: `Contribution ${id}` });
    await card.waitFor({ timeout: 30_000 });
    assert.equal(await card.locator("pre").textContent(), note, "the preview shows the file's bytes");
    await assertLabelled(page);
    await shoot(page, "validator");

    await card.getByLabel(`Reason to reject #${id}`).selectOption({ label: "low quality" });
    await card.getByRole("button", { name: `Reject #${id}` }).click();
    await card.getByRole("button", { name: "Sign and submit" }).click();
    const ballot = page.getByTestId(`ballot-${id}`);
    await ballot.getByText(/reject \(low quality\) — sealed; Studio reveals it after block \d+/).waitFor({ timeout: 30_000 });
    const sealed = await api.query.Validation.Commits.getValue(id, dave, { at: "best" });
    assert.ok(sealed, "the commitment is on chain");
    assert.equal(sealed.revealed, undefined, "and nothing of the ballot shows yet");

    // After the commit window, Studio reveals with the salt it kept.
    await ballot.getByText(/revealed; the vote closes after block \d+/).waitFor({ timeout: 90_000 });
    const revealed = await api.query.Validation.Commits.getValue(id, dave, { at: "best" });
    assert.equal(revealed.revealed.type, "Reject");
    assert.equal(revealed.revealed.value.type, "LowQuality");
    await page.context().close();
  });

  test("rewards show what the account can claim, and why the claim waits", async () => {
    const { page } = await open("/rewards");
    await page.getByLabel("Account").selectOption({ label: "Bob (dev)" });
    const claims = await api.query.Rewards.Claimable.getValue(devPair("//Bob").address, { at: "best" });
    assert.deepEqual(Object.values(claims), [0n, 0n, 0n, 0n, 0n]);
    await page.getByTestId("claimable").getByText("0 PRV").waitFor();
    // Each source in words, each with where to earn from it while it is empty.
    const sources = page.getByRole("table", { name: "Claimable by source" }).locator("tbody tr");
    assert.deepEqual(await sources.locator("th").allTextContents(), [
      "Contributions",
      "Validation",
      "Datanet ownership",
      "Training",
      "Inference",
    ]);
    assert.deepEqual(await sources.locator("td.amount").allTextContents(), Array(5).fill("0 PRV"));
    await page.getByTestId("source-training").getByRole("link", { name: "ModelFactory" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Claim everything" }).isDisabled(), true);
    await page.getByText(/Nothing to claim yet: epoch \d+ is still running/).waitFor();
    await assertLabelled(page);
    await shoot(page, "rewards");

    // The chosen account is kept across a reload.
    await page.reload();
    assert.equal(await page.getByLabel("Account").inputValue(), "dev:Bob");
    await page.context().close();
  });

  test("its owner pauses and resumes it; someone else is offered neither", async () => {
    const { page } = await open(`/datanets/${datanetId}`);
    await page.getByLabel("Account").selectOption({ label: "Bob (dev)" });
    await page.getByRole("heading", { name: "Leaderboard" }).waitFor();
    assert.equal(await page.getByRole("button", { name: "Pause contributions" }).count(), 0);

    await page.getByLabel("Account").selectOption({ label: "Alice (dev)" });
    await page.getByRole("button", { name: "Pause contributions" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByRole("definition").getByText("Paused", { exact: true }).waitFor({ timeout: 30_000 });
    const paused = await api.query.Datanets.Datanets.getValue(datanetId, { at: "best" });
    assert.equal(paused.status.type, "Paused");

    await page.getByRole("button", { name: "Resume contributions" }).click();
    await page.getByRole("button", { name: "Sign and submit" }).click();
    await page.getByRole("definition").getByText("Active", { exact: true }).waitFor({ timeout: 30_000 });
    await page.context().close();
  });

  test("a transaction overtaken by another is refused with the chain's error in words", async () => {
    // A second datanet, to close from two places at once.
    const alice = devPair("//Alice");
    const signer = getPolkadotSigner(alice.publicKey, "Sr25519", alice.sign);
    const made = await api.tx.Datanets.create({
      name: new TextEncoder().encode("Scratch"),
      summary: new Uint8Array(),
      tags: [],
      kind: { type: "Text", value: undefined },
      formats: 1,
      caps: { max_file_bytes: 1024, daily_bytes: 4096n },
    }).signAndSubmit(signer);
    const scratch = made.events.find((e) => e.type === "Datanets" && e.value.type === "DatanetCreated").value.value
      .datanet;

    const { page } = await open(`/datanets/${scratch}`);
    await page.getByLabel("Account").selectOption({ label: "Alice (dev)" });
    await page.getByRole("button", { name: "Close datanet" }).click();
    await page.getByTestId("fee").waitFor();
    // Meanwhile the owner closes it elsewhere (another tab, the CLI): that transaction reaches
    // the pool first, so it takes the earlier nonce and runs first. Both are sent just after a
    // block, so the page cannot refresh in between.
    await nextBestBlock();
    let sent;
    const broadcast = new Promise((resolve) => (sent = resolve));
    const closedElsewhere = new Promise((resolve, reject) => {
      const subscription = api.tx.Datanets.close({ datanet: scratch })
        .signSubmitAndWatch(signer)
        .subscribe({
          next: (event) => {
            if (event.type === "broadcasted") sent();
            if (event.type === "txBestBlocksState" && event.found) {
              subscription.unsubscribe();
              resolve(event);
            }
          },
          error: reject,
        });
    });
    await broadcast;
    await page.getByRole("button", { name: "Sign and submit" }).click();
    assert.equal((await closedElsewhere).ok, true);
    await see(page, "Datanets.DatanetClosed: The datanet is closed for good.");
    const after = await api.query.Datanets.Datanets.getValue(scratch, { at: "best" });
    assert.equal(after.status.type, "Closed");
    await page.context().close();
  });

  test("chat asks the server's model and shows its streamed answer; the base credits no one", async () => {
    const { page } = await open("/chat");
    const models = (await (await fetch(new URL("/v1/models", STUDIO_URL))).json()).data.map((m) => m.id);
    await page.getByLabel("Model", { exact: true }).waitFor();
    assert.equal(await page.getByLabel("Model", { exact: true }).inputValue(), models.at(-1));
    await see(page, "No fine-tune is committed for this base model yet");
    await page.getByLabel("Longest answer (tokens)").fill("12");
    await page.getByLabel("Your question").fill("What is the capital of France?");
    await page.getByRole("button", { name: "Ask" }).click();
    await see(page, "The base model: no fine-tune data to credit.", 60_000);

    // The same question to the API directly, greedy and seeded, gives the same words.
    const direct = await (
      await fetch(new URL("/v1/chat/completions", STUDIO_URL), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          model: models[0],
          messages: [{ role: "user", content: "What is the capital of France?" }],
          max_tokens: 12,
          temperature: 0,
          seed: 0,
        }),
      })
    ).json();
    const shown = await page.locator(".answer").first().textContent();
    assert.ok(shown.trim().length > 0, "an answer is shown");
    assert.equal(shown, direct.choices[0].message.content);
    await assertLabelled(page);
    await shoot(page, "chat");
    await page.context().close();
  });

  test("with a datanet, the list shows its rules and links to it", async () => {
    const { page } = await open("/datanets", { width: "phone" });
    const link = page.getByRole("link", { name: "Recipes" });
    await link.waitFor();
    const row = page.getByRole("row", { name: /Recipes/ });
    const cells = await row.getByRole("cell").allTextContents();
    assert.deepEqual(cells.slice(2, 7), ["Text", "txt, jsonl, csv, pdf, docx", "1 MiB", "8 MiB", "Active"]);
    await shoot(page, "datanets");
    await link.click();
    await page.getByRole("heading", { name: /Recipes/ }).waitFor();
    assert.match(page.url(), new RegExp(`/datanets/${datanetId}$`));
    await page.context().close();
  });
});
