// The datanets pallet's submission rules (`pallets/datanets/src/rules.rs` and `format.rs`),
// reimplemented from the published rules so Studio can say why a file would be refused before
// a fee is paid. Plain JavaScript with JSDoc types, so node's test runner checks it against the
// pallet's own test cases (tests/submission.test.mjs) with no build step.
import { Blake2256 } from "@polkadot-api/substrate-bindings";
import { toHex } from "./hex.js";

/** @typedef {"Text" | "Image" | "Audio"} Kind */
/** @typedef {{ day: number, bytes: bigint, files: number }} Usage */
/**
 * @typedef {object} SubmissionRules
 * @property {Kind} kind
 * @property {number} formats the allow-list's bits, one per format in `FORMAT_NAMES` order
 * @property {{ max_file_bytes: number, daily_bytes: bigint }} caps
 * @property {"Active" | "Paused" | "Closed"} status
 * @property {Usage} accountUsage the contributor's usage today, across datanets
 * @property {Usage} datanetUsage the datanet's usage today
 * @property {number} accountDailyFiles
 * @property {bigint} accountDailyBytes
 */

/** Every format, in the pallet's `Format::ALL` order (its bit is its index). */
export const FORMAT_NAMES = ["txt", "jsonl", "csv", "pdf", "docx", "png", "jpeg", "webp", "tiff", "bmp", "wav", "mp3", "flac"];

/** @param {string} format @returns {Kind} */
export function kindOf(format) {
  const index = FORMAT_NAMES.indexOf(format);
  return index < 5 ? "Text" : index < 10 ? "Image" : "Audio";
}

/** @param {string} text */
const ascii = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
/** @param {Uint8Array} bytes @param {string | number[]} magic */
const startsWith = (bytes, magic) => {
  const m = typeof magic === "string" ? ascii(magic) : magic;
  return bytes.length >= m.length && m.every((b, i) => bytes[i] === b);
};
/** @param {Uint8Array} b @param {number} at */
const u16 = (b, at) => b[at] | (b[at + 1] << 8);
/** @param {Uint8Array} b @param {number} at */
const u32 = (b, at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

/** An MPEG audio frame header: sync bits, a valid version, layer III, bitrate and sample rate. */
/** @param {Uint8Array} b */
function isMpegAudioFrame(b) {
  if (b.length < 4 || b[0] !== 0xff || (b[1] & 0xe0) !== 0xe0) return false;
  const version = (b[1] >> 3) & 0b11;
  const layer = (b[1] >> 1) & 0b11;
  const bitrate = b[2] >> 4;
  const sampleRate = (b[2] >> 2) & 0b11;
  return version !== 0b01 && layer === 0b01 && bitrate !== 0 && bitrate !== 0xf && sampleRate !== 0b11;
}

/** Whether a zip's local file headers name an entry starting with `prefix` (first 64 only). */
/** @param {Uint8Array} b @param {string} prefix */
function zipHasEntryPrefix(b, prefix) {
  let offset = 0;
  for (let i = 0; i < 64; i++) {
    if (offset + 30 > b.length || !startsWith(b.subarray(offset), "PK\x03\x04")) return false;
    const flags = u16(b, offset + 6);
    const compressed = u32(b, offset + 18);
    const nameLen = u16(b, offset + 26);
    const extraLen = u16(b, offset + 28);
    if (offset + 30 + nameLen > b.length) return false;
    if (startsWith(b.subarray(offset + 30, offset + 30 + nameLen), prefix)) return true;
    if (flags & 0x08) return false;
    offset += 30 + nameLen + extraLen + compressed;
  }
  return false;
}

/** @param {Uint8Array} b @returns {string | undefined} */
function detectBinary(b) {
  /** @param {string} form */
  const riffOf = (form) => b.length >= 12 && startsWith(b, "RIFF") && startsWith(b.subarray(8), form);
  if (startsWith(b, "\x89PNG\r\n\x1a\n")) return "png";
  if (startsWith(b, [0xff, 0xd8, 0xff])) return "jpeg";
  if (riffOf("WEBP")) return "webp";
  if (riffOf("WAVE")) return "wav";
  if (startsWith(b, "II*\0") || startsWith(b, "MM\0*")) return "tiff";
  // "BM" alone is too weak: the header's file size must match.
  if (startsWith(b, "BM") && b.length >= 26 && u32(b, 2) === b.length) return "bmp";
  if (startsWith(b, "%PDF-")) return "pdf";
  if (startsWith(b, "fLaC")) return "flac";
  if (startsWith(b, "ID3") || isMpegAudioFrame(b)) return "mp3";
  if (startsWith(b, "PK\x03\x04") && zipHasEntryPrefix(b, "word/")) return "docx";
  return undefined;
}

// Rust's `str::lines` then `trim`: lines split at \n (a trailing \r dropped), whitespace trimmed.
/** @param {string} text @returns {string[]} */
const nonEmptyLines = (text) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0);

/** @param {string} line */
const looksLikeJsonObject = (line) => line.startsWith("{") && line.endsWith("}") && line.includes(":");

/** @param {string} line */
function csvFieldCount(line) {
  let fields = 1;
  let quoted = false;
  for (const c of line) {
    if (c === '"') quoted = !quoted;
    else if (c === "," && !quoted) fields += 1;
  }
  return fields;
}

/** @param {string} text */
function isCsv(text) {
  const counts = nonEmptyLines(text).map(csvFieldCount);
  return counts.length >= 2 && counts[0] >= 2 && counts.every((c) => c === counts[0]);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** @param {Uint8Array} b @returns {string | undefined} */
function detectText(b) {
  let text;
  try {
    text = utf8.decode(b);
  } catch {
    return undefined;
  }
  if (text.length === 0 || text.includes("\0")) return undefined;
  const lines = nonEmptyLines(text);
  if (lines.length > 0 && lines.every(looksLikeJsonObject)) return "jsonl";
  if (isCsv(text)) return "csv";
  return "txt";
}

/**
 * The format the pallet detects in `bytes`, or undefined.
 * @param {Uint8Array} bytes
 * @returns {string | undefined}
 */
export function detect(bytes) {
  return detectBinary(bytes) ?? detectText(bytes);
}

/**
 * blake2-256 of the bytes, as the chain keys a file: 0x-prefixed hex.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function contentHash(bytes) {
  return toHex(Blake2256(bytes));
}

/**
 * Judges `data` against `rules` as the pallet does. `isDuplicate(hash)` says whether the datanet
 * holds those bytes. Returns `{ ok: true, format, hash }`, or `{ ok: false, refusal }` in the
 * CLI's words.
 * @param {SubmissionRules} rules
 * @param {Uint8Array} data
 * @param {(hash: string) => boolean} isDuplicate
 * @returns {{ ok: true, format: string, hash: string } | { ok: false, refusal: string }}
 */
export function check(rules, data, isDuplicate) {
  if (rules.status === "Paused") return { ok: false, refusal: "the datanet is paused by its owner" };
  if (rules.status === "Closed") return { ok: false, refusal: "the datanet is closed" };
  if (data.length === 0) return { ok: false, refusal: "the file is empty" };
  const size = BigInt(data.length);
  if (data.length > rules.caps.max_file_bytes)
    return { ok: false, refusal: `the file is ${size} bytes; the datanet's per-file cap is ${rules.caps.max_file_bytes} bytes` };
  const detected = detect(data);
  if (!detected)
    return {
      ok: false,
      refusal:
        "its bytes match no supported format (txt, md, jsonl, csv, pdf, docx, png, jpeg, webp, tiff, bmp, wav, mp3, flac)",
    };
  if (kindOf(detected) !== rules.kind)
    return { ok: false, refusal: `its bytes are ${detected} (${kindOf(detected)} data), but the datanet holds ${rules.kind} data` };
  if (!(rules.formats & (1 << FORMAT_NAMES.indexOf(detected))))
    return { ok: false, refusal: `its bytes are ${detected}, which the datanet's allow-list does not admit` };
  const hash = contentHash(data);
  if (isDuplicate(hash)) return { ok: false, refusal: "these exact bytes are already in the datanet" };
  const account = rules.accountUsage;
  if (account.files >= rules.accountDailyFiles)
    return { ok: false, refusal: `you have submitted ${rules.accountDailyFiles} files today, the daily limit per account` };
  if (account.bytes + size > rules.accountDailyBytes)
    return {
      ok: false,
      refusal: `you have submitted ${account.bytes} bytes today; ${size} more would pass the daily limit of ${rules.accountDailyBytes} bytes per account`,
    };
  const datanet = rules.datanetUsage;
  if (datanet.bytes + size > rules.caps.daily_bytes)
    return {
      ok: false,
      refusal: `the datanet took ${datanet.bytes} bytes today; ${size} more would pass its daily cap of ${rules.caps.daily_bytes} bytes`,
    };
  return { ok: true, format: detected, hash };
}

/**
 * Usage as of `today`: a record from an earlier day counts as none, as the pallet's `on(today)`.
 * @param {Usage | undefined} usage @param {number} today @returns {Usage}
 */
export function usageOn(usage, today) {
  return usage && usage.day === today ? usage : { day: today, bytes: 0n, files: 0 };
}
