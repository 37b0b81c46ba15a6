// The training-set trees of the models pallet (pallets/models/src/merkle.rs), recomputed in the
// browser so that Studio's provenance explorer checks the chain's data instead of trusting it.
//
// - leaf  = blake2_256("prv/leaf"  ‖ id as u64 LE ‖ content hash)
// - node  = blake2_256("prv/node"  ‖ left ‖ right)
// - share = blake2_256("prv/share" ‖ id as u64 LE ‖ weight as u64 LE)
// - a datanet's log root: a tree of DEPTH levels, positions past the end holding empty subtrees
//   (zero(0) = 32 zero bytes, zero(h + 1) = node(zero(h), zero(h)));
// - a set's root: blake2_256("prv/set" ‖ SCALE(Vec<(datanet u32, count u64, root)>)).
// Hashes are `0x` hex strings, as polkadot-api gives them.
import { Blake2256 } from "@polkadot-api/substrate-bindings";
import { fromHex, toHex } from "./hex.js";

/** Levels of every datanet's tree. */
export const DEPTH = 32;

const utf8 = new TextEncoder();
const TAGS = {
  leaf: utf8.encode("prv/leaf"),
  node: utf8.encode("prv/node"),
  share: utf8.encode("prv/share"),
  set: utf8.encode("prv/set"),
};

/** @param {bigint | number} value @param {number} size */
function littleEndian(value, size) {
  const out = new Uint8Array(size);
  let rest = BigInt(value);
  for (let i = 0; i < size; i++) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** @param {Uint8Array} tag @param {Uint8Array[]} parts @returns {Uint8Array} */
function tagged(tag, parts) {
  const bytes = new Uint8Array(tag.length + parts.reduce((n, p) => n + p.length, 0));
  bytes.set(tag);
  let at = tag.length;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return Blake2256(bytes);
}

/** @param {Uint8Array} left @param {Uint8Array} right */
const nodeBytes = (left, right) => tagged(TAGS.node, [left, right]);

/** @type {Uint8Array[]} the empty subtree's root at each height */
const ZEROS = [new Uint8Array(32)];
for (let height = 1; height <= DEPTH; height++) ZEROS.push(nodeBytes(ZEROS[height - 1], ZEROS[height - 1]));

/** The leaf of contribution `id` whose content hash is `content`. @param {bigint | number} id @param {string} content */
export function leaf(id, content) {
  return toHex(tagged(TAGS.leaf, [littleEndian(id, 8), fromHex(content)]));
}

/** The parent of two nodes. @param {string} left @param {string} right */
export function node(left, right) {
  return toHex(nodeBytes(fromHex(left), fromHex(right)));
}

/** The leaf of a share: contribution `id` weighs `weight`. @param {bigint | number} id @param {bigint | number} weight */
export function shareLeaf(id, weight) {
  return toHex(tagged(TAGS.share, [littleEndian(id, 8), littleEndian(weight, 8)]));
}

/** Every level below the root, from the leaves up, each up to its last node over a leaf. @param {string[]} leaves */
function levels(leaves) {
  /** @type {Uint8Array[][]} */
  const out = [];
  /** @type {Uint8Array[]} */
  let level = leaves.map(fromHex);
  for (let height = 0; height < DEPTH; height++) {
    out.push(level);
    const next = [];
    for (let i = 0; i < level.length; i += 2) next.push(nodeBytes(level[i], level[i + 1] ?? ZEROS[height]));
    level = next;
  }
  return { out, top: level[0] ?? ZEROS[DEPTH] };
}

/** The root over `leaves`, zero subtrees past the end. @param {string[]} leaves */
export function rootOf(leaves) {
  return toHex(levels(leaves).top);
}

/** Every leaf's siblings from the leaf up, from one pass over the tree. @param {string[]} leaves */
export function proofs(leaves) {
  const { out } = levels(leaves);
  return leaves.map((_, index) =>
    out.map((level, height) => toHex(level[(index >> height) ^ 1] ?? ZEROS[height])),
  );
}

/** The root that `leafHash` at `index` and its `siblings` lead to. @param {string} leafHash @param {bigint | number} index @param {string[]} siblings */
export function foldProof(leafHash, index, siblings) {
  /** @type {Uint8Array} */
  let hash = fromHex(leafHash);
  const position = BigInt(index);
  siblings.forEach((sibling, height) => {
    const other = fromHex(sibling);
    hash = (position >> BigInt(height)) & 1n ? nodeBytes(other, hash) : nodeBytes(hash, other);
  });
  return toHex(hash);
}

/** SCALE's compact length prefix. @param {number} n */
function compactLength(n) {
  if (n < 1 << 6) return Uint8Array.of(n << 2);
  if (n < 1 << 14) return littleEndian((n << 2) | 1, 2);
  if (n < 1 << 30) return littleEndian(((n << 2) | 2) >>> 0, 4);
  throw new Error("too many parts");
}

/**
 * The root of a whole training set: its parts in increasing datanet order.
 * @param {{ datanet: number, count: bigint | number, root: string }[]} parts
 */
export function setRoot(parts) {
  const encoded = [compactLength(parts.length)];
  for (const part of parts) encoded.push(littleEndian(part.datanet, 4), littleEndian(part.count, 8), fromHex(part.root));
  return toHex(tagged(TAGS.set, encoded));
}
