// Studio's copy of the models pallet's training-set trees (pallets/models/src/merkle.rs).
// The expected hashes were computed by a separate implementation (Python's hashlib.blake2b with
// the definitions in merkle.rs's header); the browser tests then check the same code against
// the roots a real chain committed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { contentHash } from "../src/submission.js";
import { fromHex, toHex } from "../src/hex.js";
import { DEPTH, foldProof, leaf, node, proofs, rootOf, setRoot, shareLeaf } from "../src/merkle.js";

const leaves = Array.from({ length: 5 }, (_, i) => leaf(i * 3, contentHash(Uint8Array.of(i))));

test("leaves, roots, set roots and share leaves match an independent implementation", () => {
  assert.equal(contentHash(Uint8Array.of(0)), "0x03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314");
  assert.equal(leaves[0], "0xf53a6c28448632e6a7544a7cd9c1e0b5918f0e568846b193b7acbbeb3a4dcc9d");
  const root5 = "0xbbea35852767752953c3a660ecb0900022cd90e69908fd90dd7001a38794f0fe";
  const empty = "0x545549b6154c8db1c164993a29c8ad95f24e731f3a8d2a94ba94f4b4e050779f";
  assert.equal(rootOf(leaves), root5);
  assert.equal(rootOf([]), empty, "an empty log's root is the empty tree's");
  assert.equal(
    setRoot([
      { datanet: 1, count: 5n, root: root5 },
      { datanet: 4, count: 0n, root: empty },
    ]),
    "0xc049c05ef2e1f63deb028e7ea771705d9a5b1d79f4a1a5ae5ad5fb5816d4c59c",
  );
  assert.equal(shareLeaf(9n, 250_000_000n), "0x6b1291c79c0777622e7c258132c69c9d52a418cda0c8b0dd8b3ed0fc2db8bdc9");
});

test("every proof folds to the root, and fails for another leaf, position or sibling", () => {
  const root = rootOf(leaves);
  const all = proofs(leaves);
  all.forEach((siblings, i) => {
    assert.equal(siblings.length, DEPTH);
    assert.equal(foldProof(leaves[i], i, siblings), root, `leaf ${i}`);
    assert.notEqual(foldProof(leaves[(i + 1) % 5], i, siblings), root, `another leaf at ${i}`);
    assert.notEqual(foldProof(leaves[i], i ^ 1, siblings), root, `leaf ${i} at another position`);
    const tampered = [...siblings];
    tampered[DEPTH - 1] = node(tampered[DEPTH - 1], tampered[DEPTH - 1]);
    assert.notEqual(foldProof(leaves[i], i, tampered), root, `a changed sibling of ${i}`);
  });
});

test("a root commits to its length, its order and every content hash", () => {
  const root = rootOf(leaves);
  assert.notEqual(rootOf(leaves.slice(0, 4)), root, "one fewer");
  assert.notEqual(rootOf([leaves[1], leaves[0], ...leaves.slice(2)]), root, "two swapped");
  assert.notEqual(rootOf([...leaves.slice(0, 4), leaf(12, contentHash(Uint8Array.of(5)))]), root, "one file changed");
  assert.notEqual(leaf(1, contentHash(Uint8Array.of(0))), leaf(2, contentHash(Uint8Array.of(0))), "the id is in the leaf");
  assert.notEqual(shareLeaf(9n, 1n), shareLeaf(9n, 2n), "the weight is in the share");
});

test("hex as big as an adapter decodes, and what is not hex is refused", () => {
  const bytes = fromHex("0x" + "a5".repeat(7_000_000));
  assert.equal(bytes.length, 7_000_000);
  assert.ok(bytes.every((b) => b === 0xa5));
  assert.equal(toHex(fromHex("0x00ff10")), "0x00ff10");
  assert.throws(() => fromHex("0xabc"), /is not hex/);
  assert.throws(() => fromHex("0xzz"), /is not hex/);
});
