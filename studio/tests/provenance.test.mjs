// The provenance explorer's checks against evidence that is right, then tampered with one way at
// a time, as a lying node would: each lie fails the check a person would look at, and only it
// (plus the set's root above a changed log root, and the summary of members where a member is
// involved).
import assert from "node:assert/strict";
import { test } from "node:test";
import { leaf, rootOf, setRoot, shareLeaf } from "../src/merkle.js";
import { checkProvenance, membership } from "../src/provenance.js";
import { contentHash } from "../src/submission.js";

const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

/** A job over datanets 1 (three files) and 3 (one file), committed honestly. */
function honest() {
  const files = [
    [1, 10n, "alpha"],
    [1, 11n, "beta"],
    [1, 14n, "gamma"],
    [3, 12n, "delta"],
  ];
  const members = [];
  const records = new Map();
  for (const [datanet, contribution, text] of files) {
    const content = contentHash(new TextEncoder().encode(text));
    const index = BigInt(members.filter((m) => m.datanet === datanet).length);
    members.push({ datanet, index, entry: { contribution, content } });
    records.set(String(contribution), { contributor: ALICE, hash: content, status: "Accepted" });
  }
  const parts = [1, 3].map((datanet) => {
    const own = members.filter((m) => m.datanet === datanet);
    return { datanet, count: BigInt(own.length), root: rootOf(own.map((m) => leaf(m.entry.contribution, m.entry.content))) };
  });
  const shares = members.map((m, i) => ({ contribution: m.entry.contribution, weight: BigInt(100 * (i + 1)) }));
  const root = setRoot(parts);
  const adapter = "0x" + "ab".repeat(32);
  return {
    training: { parts, root, size: 4n },
    outcome: { adapter, training_root: root, shares_root: rootOf(shares.map((s) => shareLeaf(s.contribution, s.weight))) },
    shares,
    members,
    records,
    adapter: { sha256: adapter, size: 1234 },
  };
}

const failed = (evidence) =>
  checkProvenance(evidence)
    .checks.filter((c) => !c.ok)
    .map((c) => c.what);

test("honest evidence verifies, with each member's share and proof", () => {
  const { checks, rows, verified } = checkProvenance(honest());
  assert.equal(verified, true, JSON.stringify(checks));
  assert.deepEqual(
    checks.map((c) => c.what),
    ["adapter hash", "datanet 1 root", "datanet 3 root", "training-set root", "members", "shares"],
  );
  assert.deepEqual(
    rows.map((r) => [r.contribution, r.datanet, r.index, r.verdict, r.proved]),
    [
      [10n, 1, 0n, "accepted", true],
      [11n, 1, 1n, "accepted", true],
      [14n, 1, 2n, "accepted", true],
      [12n, 3, 0n, "accepted", true],
    ],
  );
  assert.deepEqual(
    rows.map((r) => r.share),
    [0.1, 0.2, 0.3, 0.4],
  );
});

test("each lie fails the check that covers it", () => {
  const cases = [
    ["another adapter", (e) => (e.adapter = { sha256: "0x" + "cd".repeat(32), size: 1234 }), ["adapter hash"]],
    ["no adapter on chain", (e) => (e.adapter = { problem: "the chain holds no published adapter" }), ["adapter hash"]],
    [
      "a file swapped",
      (e) => (e.members[1].entry.content = contentHash(new TextEncoder().encode("forged"))),
      ["datanet 1 root", "training-set root", "members"],
    ],
    ["a member left out", (e) => e.members.splice(2, 1), ["datanet 1 root", "training-set root", "members", "shares"]],
    [
      "two members swapped",
      (e) => ([e.members[0], e.members[1]] = [e.members[1], e.members[0]]),
      ["datanet 1 root", "training-set root", "members", "shares"],
    ],
    ["a rejected file", (e) => (e.records.get("14").status = "Rejected"), ["members"]],
    ["a record with other content", (e) => (e.records.get("12").hash = "0x" + "00".repeat(32)), ["members"]],
    ["a share inflated", (e) => (e.shares[0].weight += 1n), ["shares"]],
    ["another set committed", (e) => (e.outcome.training_root = "0x" + "11".repeat(32)), ["training-set root"]],
    ["a count changed", (e) => (e.training.parts[1].count = 2n), ["datanet 3 root", "training-set root"]],
  ];
  for (const [name, tamper, expected] of cases) {
    const evidence = honest();
    tamper(evidence);
    assert.deepEqual(failed(evidence), expected, name);
    assert.equal(checkProvenance(evidence).verified, false, name);
  }
});

test("a file is found in the set by its content, or said to be outside it", () => {
  const { members } = honest();
  assert.match(
    membership(members, contentHash(new TextEncoder().encode("gamma"))),
    /^Yes: it is contribution 14, position 2 of datanet 1's log/,
  );
  assert.equal(
    membership(members, contentHash(new TextEncoder().encode("epsilon"))),
    "No: no file with this content is in the training set.",
  );
});
