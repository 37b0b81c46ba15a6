// The voucher bytes Studio signs for a paid server, against the layout of
// `pallet_inference::Voucher::signing_payload` written out by hand (Python's struct.pack):
// the context, the genesis hash, then channel u64, job Option<u64> and cumulative u128, all
// little-endian. The browser test (factory.test.mjs) has the chain settle what Studio signed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { toHex } from "../src/hex.js";
import { signVoucher, voucherPayload } from "../src/voucher.js";

const GENESIS = "0x" + "11".repeat(32);
const CONTEXT = Buffer.from("provenant/voucher").toString("hex");

describe("vouchers", () => {
  test("a fine-tune's voucher and the base model's are laid out as the pallet signs them", () => {
    const fineTune = voucherPayload(GENESIS, { channel: 3n, job: 7n, cumulative: 123456789012345678901234n });
    assert.equal(
      toHex(fineTune),
      `0x${CONTEXT}${"11".repeat(32)}0300000000000000010700000000000000f2af966ca0101f9b241a000000000000`,
    );
    const base = voucherPayload(GENESIS, { channel: 3n, job: undefined, cumulative: 5n });
    assert.equal(toHex(base), `0x${CONTEXT}${"11".repeat(32)}030000000000000000${"05".padEnd(32, "0")}`);
  });

  test("what the server asks for is signed once and offered as its payment field", async () => {
    const asked = [];
    const signature = new Uint8Array(64).fill(9);
    const payment = await signVoucher(GENESIS, { channel: 3, job: 7, cumulative: "1000" }, async (bytes) => {
      asked.push(bytes);
      return signature;
    });
    assert.equal(asked.length, 1);
    assert.deepEqual(asked[0], voucherPayload(GENESIS, { channel: 3n, job: 7n, cumulative: 1000n }));
    assert.deepEqual(payment, { channel: 3, cumulative: "1000", signature: toHex(signature) });
    // A wallet that prefixes the sr25519 type byte still gives the server the 64 bytes.
    const prefixed = await signVoucher(GENESIS, { channel: 3, job: null, cumulative: "5" }, async () =>
      Uint8Array.from([1, ...signature]),
    );
    assert.equal(prefixed.signature, toHex(signature));
  });
});
