// Studio's copy of the submission rules against the pallet's own test cases
// (pallets/datanets/src/format.rs and rules.rs): the same bytes, the same verdicts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { check, contentHash, detect, usageOn } from "../src/submission.js";

const bytes = (text) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const le32 = (n) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

/** A zip whose first local header names `name` (stored, no data descriptor). */
function zipWithEntry(name) {
  return Uint8Array.from([
    ...bytes("PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0"),
    ...le32(2),
    ...le32(2),
    name.length & 0xff,
    name.length >> 8,
    0,
    0,
    ...bytes(name),
    ...bytes("{}"),
  ]);
}

test("detects each binary format from its magic bytes", () => {
  const bmp = new Uint8Array(30);
  bmp.set([...bytes("BM"), ...le32(30)]);
  const cases = [
    [bytes("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "png"],
    [bytes("\xFF\xD8\xFF\xE0\0\x10JFIF\0"), "jpeg"],
    [bytes("RIFF\x10\0\0\0WEBPVP8 "), "webp"],
    [bytes("RIFF\x24\0\0\0WAVEfmt "), "wav"],
    [bytes("II*\0\x08\0\0\0"), "tiff"],
    [bytes("MM\0*\0\0\0\x08"), "tiff"],
    [bmp, "bmp"],
    [bytes("%PDF-1.7\n%"), "pdf"],
    [bytes("fLaC\0\0\0\x22"), "flac"],
    [bytes("ID3\x04\0\0\0\0\0\0"), "mp3"],
    [Uint8Array.from([0xff, 0xfb, 0x90, 0x64, 0x00]), "mp3"],
    [zipWithEntry("word/document.xml"), "docx"],
  ];
  for (const [data, expected] of cases) assert.equal(detect(data), expected, expected);
});

test("detects text structure", () => {
  const utf8 = (text) => new TextEncoder().encode(text);
  assert.equal(detect(utf8("# A title\n\nSome prose.")), "txt");
  assert.equal(detect(utf8('{"text": "a"}\n{"text": "b"}\n')), "jsonl");
  assert.equal(detect(utf8('name,age\nada,36\n"lovelace, a",37\n')), "csv");
  assert.equal(detect(utf8("a,b\nc\n")), "txt", "rows of unequal width are prose");
  assert.equal(detect(utf8("naïve café ☕")), "txt");
  assert.equal(detect(utf8('{"text": "a"}\n{"text": "b"\n{"text": "c"}\n')), "txt");
});

test("refuses what it cannot vouch for", () => {
  assert.equal(detect(Uint8Array.from([0x00, 0xff, 0x13, 0x37])), undefined);
  assert.equal(detect(bytes("abc\0def")), undefined);
  assert.equal(detect(new Uint8Array()), undefined);
  assert.equal(detect(zipWithEntry("xl/workbook.xml")), undefined);
  assert.equal(detect(bytes("BMW drivers wave")), "txt");
  assert.equal(detect(bytes("RIFF\0\0")), undefined);
});

test("the content hash is blake2-256, as the chain keys files", () => {
  // blake2b-256 of the empty string, a published test vector.
  assert.equal(contentHash(new Uint8Array()), "0x0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
});

const TEXT_RULES = {
  kind: "Text",
  formats: 0b11, // txt, jsonl
  caps: { max_file_bytes: 100, daily_bytes: 150n },
  status: "Active",
  accountUsage: { day: 3, bytes: 0n, files: 0 },
  datanetUsage: { day: 3, bytes: 0n, files: 0 },
  accountDailyFiles: 2,
  accountDailyBytes: 120n,
};

test("the rules refuse, in the CLI's words, in the pallet's order", () => {
  const never = () => false;
  const ok = bytes("some prose");
  assert.equal(check({ ...TEXT_RULES, status: "Paused" }, ok, never).refusal, "the datanet is paused by its owner");
  assert.equal(check({ ...TEXT_RULES, status: "Closed" }, ok, never).refusal, "the datanet is closed");
  assert.equal(check(TEXT_RULES, new Uint8Array(), never).refusal, "the file is empty");
  assert.equal(
    check(TEXT_RULES, new Uint8Array(101).fill(97), never).refusal,
    "the file is 101 bytes; the datanet's per-file cap is 100 bytes",
  );
  assert.match(check(TEXT_RULES, Uint8Array.from([0, 0xff]), never).refusal, /^its bytes match no supported format/);
  assert.equal(
    check(TEXT_RULES, bytes("%PDF-1.7\n%"), never).refusal,
    "its bytes are pdf, which the datanet's allow-list does not admit",
  );
  assert.equal(
    check(TEXT_RULES, bytes("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), never).refusal,
    "its bytes are png (Image data), but the datanet holds Text data",
  );
  assert.equal(check(TEXT_RULES, ok, () => true).refusal, "these exact bytes are already in the datanet");
  assert.equal(
    check({ ...TEXT_RULES, accountUsage: { day: 3, bytes: 0n, files: 2 } }, ok, never).refusal,
    "you have submitted 2 files today, the daily limit per account",
  );
  assert.equal(
    check({ ...TEXT_RULES, accountUsage: { day: 3, bytes: 115n, files: 1 } }, ok, never).refusal,
    "you have submitted 115 bytes today; 10 more would pass the daily limit of 120 bytes per account",
  );
  assert.equal(
    check({ ...TEXT_RULES, datanetUsage: { day: 3, bytes: 145n, files: 9 } }, ok, never).refusal,
    "the datanet took 145 bytes today; 10 more would pass its daily cap of 150 bytes",
  );
  const admitted = check(TEXT_RULES, ok, never);
  assert.equal(admitted.ok, true);
  assert.equal(admitted.format, "txt");
  assert.equal(admitted.hash, contentHash(ok));
});

test("yesterday's usage counts as none today", () => {
  assert.deepEqual(usageOn({ day: 2, bytes: 99n, files: 5 }, 3), { day: 3, bytes: 0n, files: 0 });
  assert.deepEqual(usageOn({ day: 3, bytes: 99n, files: 5 }, 3), { day: 3, bytes: 99n, files: 5 });
});
