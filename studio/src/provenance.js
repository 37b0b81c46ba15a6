// The checks of `provenant verify`, recomputed in the browser from public chain data: the
// adapter's hash, each datanet's log root at the job's count, the set's root, every member's
// inclusion proof and verdict, and the shares' root. Only raw data comes from the node; a node
// that lies about any of it fails a check here. Plain JavaScript with JSDoc types, so node's test
// runner checks it against tampered evidence (tests/provenance.test.mjs).
import { foldProof, leaf, proofs, rootOf, setRoot, shareLeaf } from "./merkle.js";

/** @typedef {{ datanet: number, count: bigint, root: string }} Part */
/** @typedef {{ datanet: number, index: bigint, entry: { contribution: bigint, content: string } }} Member */
/** @typedef {{ contributor: string, hash: string, status: string }} ContributionRecord */
/**
 * @typedef {object} Evidence
 * @property {{ parts: Part[], root: string, size: bigint }} training the job's training set
 * @property {{ adapter: string, training_root: string, shares_root: string }} outcome what the worker committed
 * @property {{ contribution: bigint, weight: bigint }[]} shares the committed shares, in set order
 * @property {Member[]} members the training set as the node lists it
 * @property {Map<string, ContributionRecord>} records each member's contribution record, by id
 * @property {{ sha256: string, size: number } | { problem: string }} adapter the chain's copy of the adapter, hashed here
 */
/** @typedef {{ what: string, ok: boolean, detail: string }} Check */
/**
 * @typedef {object} Row
 * @property {bigint} contribution
 * @property {number} datanet
 * @property {bigint} index position in the datanet's log
 * @property {string} content blake2-256 of the file
 * @property {string} contributor
 * @property {string} verdict
 * @property {number | undefined} share fraction of the contributors' part
 * @property {boolean} proved its proof folds to the committed root and it was accepted with this content
 */

/** @param {string} hash */
const short = (hash) => `${hash.slice(0, 14)}…`;

/**
 * Every check, in the CLI's order, and one row per member.
 * @param {Evidence} e
 * @returns {{ checks: Check[], rows: Row[], verified: boolean }}
 */
export function checkProvenance(e) {
  /** @type {Check[]} */
  const checks = [];
  const record = (/** @type {string} */ what, /** @type {boolean} */ ok, /** @type {string} */ detail) =>
    checks.push({ what, ok, detail });

  if ("problem" in e.adapter) {
    record("adapter hash", false, e.adapter.problem);
  } else {
    record(
      "adapter hash",
      e.adapter.sha256 === e.outcome.adapter,
      `the chain's copy (${e.adapter.size} bytes) has sha256 ${short(e.adapter.sha256)} · committed ${short(e.outcome.adapter)}`,
    );
  }

  const totalWeight = e.shares.reduce((sum, s) => sum + s.weight, 0n);
  /** @param {bigint} contribution */
  const shareOf = (contribution) => {
    const share = e.shares.find((s) => s.contribution === contribution);
    return share && totalWeight > 0n ? Number(share.weight) / Number(totalWeight) : undefined;
  };

  /** @type {Part[]} */
  const recomputed = [];
  /** @type {Row[]} */
  const rows = [];
  /** @type {bigint[]} */
  const failing = [];
  for (const part of e.training.parts) {
    const members = e.members.filter((m) => m.datanet === part.datanet);
    const leaves = members.map((m) => leaf(m.entry.contribution, m.entry.content));
    const root = rootOf(leaves);
    record(
      `datanet ${part.datanet} root`,
      BigInt(leaves.length) === part.count && root === part.root,
      `${leaves.length} entries give ${short(root)} · job recorded ${part.count} entries, ${short(part.root)}`,
    );
    recomputed.push({ datanet: part.datanet, count: part.count, root });
    const siblings = proofs(leaves);
    members.forEach((m, i) => {
      // The proof is taken over the leaves at their listed positions; a member listed out of
      // place folds to another root.
      const folds = BigInt(i) === m.index && foldProof(leaves[i], m.index, siblings[i]) === part.root;
      const r = e.records.get(String(m.entry.contribution));
      const accepted = r !== undefined && r.hash === m.entry.content && r.status === "Accepted";
      if (!(folds && accepted)) failing.push(m.entry.contribution);
      rows.push({
        contribution: m.entry.contribution,
        datanet: m.datanet,
        index: m.index,
        content: m.entry.content,
        contributor: r?.contributor ?? "",
        verdict: r ? r.status.toLowerCase() : "unknown",
        share: shareOf(m.entry.contribution),
        proved: folds && accepted,
      });
    });
  }

  const root = setRoot(recomputed);
  record(
    "training-set root",
    root === e.training.root && e.outcome.training_root === e.training.root,
    `recomputed ${short(root)} · job ${short(e.training.root)} · committed ${short(e.outcome.training_root)}`,
  );
  const listedParts = new Set(e.training.parts.map((p) => p.datanet));
  const strays = e.members.filter((m) => !listedParts.has(m.datanet)).length;
  record(
    "members",
    failing.length === 0 && strays === 0 && BigInt(e.members.length) === e.training.size,
    failing.length === 0 && strays === 0
      ? `${e.members.length} contributions, each proved and accepted (the job lists ${e.training.size})`
      : `these fail their proof or were not accepted: ${[...failing.map(String), ...(strays ? [`${strays} from datanets outside the set`] : [])].join(", ")}`,
  );

  const sharesRoot = rootOf(e.shares.map((s) => shareLeaf(s.contribution, s.weight)));
  const inOrder =
    e.shares.length === e.members.length && e.shares.every((s, i) => s.contribution === e.members[i].entry.contribution);
  record(
    "shares",
    sharesRoot === e.outcome.shares_root && inOrder,
    `${e.shares.length} shares give ${short(sharesRoot)} · committed ${short(e.outcome.shares_root)}${inOrder ? "" : " · not one per member in set order"}`,
  );
  return { checks, rows, verified: checks.every((c) => c.ok) };
}

/**
 * Whether the file with content hash `hash` trained the job, and where.
 * @param {Member[]} members
 * @param {string} hash
 */
export function membership(members, hash) {
  const found = members.find((m) => m.entry.content === hash);
  return found
    ? `Yes: it is contribution ${found.entry.contribution}, position ${found.index} of datanet ${found.datanet}'s log, in the training set.`
    : "No: no file with this content is in the training set.";
}
