// Studio's copy of the worker's held-out rule, against an independent implementation of it
// (Python's hashlib and struct: sorted(sha256(pack('<QQ', seed, id))), the first
// ⌊n × fraction / 10⁶⌋, never all), and the text it reads from each format.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { exampleText, heldOut } from "../src/heldout.js";

const ids = (from, to) => Array.from({ length: to - from }, (_, i) => BigInt(from + i));

describe("held-out files", () => {
  test("the same files as the worker's rule, in its order", () => {
    assert.deepEqual(heldOut(ids(10, 20), 42n, 340_000), [13n, 12n, 14n]);
    assert.deepEqual(heldOut([0n, 1n, 2n], 0n, 340_000), [0n]);
    assert.deepEqual(heldOut(ids(10, 20), 2n ** 63n + 5n, 500_000), [15n, 11n, 19n, 10n, 18n]);
    // Never every file, however large the fraction; nothing when nothing is held out.
    assert.deepEqual(heldOut([5n, 9n], 7n, 1_000_000), [9n]);
    assert.deepEqual(heldOut(ids(0, 5), 1n, 0), []);
    assert.deepEqual(heldOut([], 1n, 500_000), []);
  });

  test("text as the worker reads it, and nothing for what only it can read", () => {
    const bytes = (text) => new TextEncoder().encode(text);
    assert.equal(exampleText("Txt", bytes("  The river Elm floods.\n")), "The river Elm floods.");
    const jsonl = [
      JSON.stringify({ prompt: "What is the capital of Zorbia?", response: "Quillhaven." }),
      "",
      JSON.stringify({ text: "A plain line." }),
      JSON.stringify({ instruction: "Add", input: "2 and 2", output: "4" }),
      JSON.stringify({ instruction: "Greet", input: " ", output: "Hello" }),
    ].join("\n");
    assert.equal(
      exampleText("Jsonl", bytes(jsonl)),
      "What is the capital of Zorbia? Quillhaven.\nA plain line.\nAdd\n\n2 and 2 4\nGreet Hello",
    );
    assert.equal(exampleText("Pdf", bytes("%PDF-1.7")), undefined);
    assert.equal(exampleText("Png", new Uint8Array([137, 80])), undefined);
  });
});
