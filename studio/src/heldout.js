// Which of a run's files its worker held out, and their text: the worker's rule
// (`worker/src/dataset.rs`, `held_out` and `examples`), reimplemented so a run's page can test
// the run on exactly the files it did not train on. Plain JavaScript with JSDoc types, checked
// against an independent implementation of the rule by tests/heldout.test.mjs.
import { sha256 } from "@noble/hashes/sha2.js";

/** @param {bigint} value */
function le64(value) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, true);
  return bytes;
}

/**
 * The contributions a job with `seed` and `fraction` (parts per million) holds out of `ids`:
 * `⌊len × fraction / 10⁶⌋` of them, never all, the lowest by `sha256(seed ‖ id)` (both
 * little-endian u64), in that order.
 * @param {bigint[]} ids
 * @param {bigint} seed
 * @param {number} fraction
 * @returns {bigint[]}
 */
export function heldOut(ids, seed, fraction) {
  const count = Math.min(Number((BigInt(ids.length) * BigInt(fraction)) / 1_000_000n), Math.max(ids.length - 1, 0));
  const ranked = ids.map((id) => {
    const input = new Uint8Array(16);
    input.set(le64(seed), 0);
    input.set(le64(id), 8);
    return { hash: sha256(input), id };
  });
  ranked.sort((a, b) => compareBytes(a.hash, b.hash) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.id);
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function compareBytes(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * The words a contribution of `format` (the chain's name, e.g. "Txt") teaches, as plain text:
 * the whole file for text and CSV, each JSON line's prompt and response (or text, or Alpaca's
 * instruction, input and output) for JSON lines. Undefined for formats Studio cannot read
 * (PDF, DOCX, media): the worker extracts those itself.
 * @param {string} format
 * @param {Uint8Array} bytes
 * @returns {string | undefined}
 */
export function exampleText(format, bytes) {
  const text = new TextDecoder().decode(bytes);
  if (format === "Txt" || format === "Csv") return text.trim();
  if (format !== "Jsonl") return undefined;
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => {
      const o = JSON.parse(line);
      if (typeof o.text === "string") return o.text;
      if (typeof o.prompt === "string" && typeof o.response === "string") return `${o.prompt} ${o.response}`;
      const input = typeof o.input === "string" && o.input.trim() ? `\n\n${o.input}` : "";
      return `${o.instruction}${input} ${o.output}`;
    })
    .join("\n")
    .trim();
}
