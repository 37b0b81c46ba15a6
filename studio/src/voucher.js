// Paid inference's vouchers, as `pallet_inference::Voucher::signing_payload` lays them out: the
// context, the chain's genesis hash, then the voucher SCALE-encoded. Wallets sign these bytes
// wrapped in <Bytes>…</Bytes>, which the chain and the server accept as they accept the bare form.
import { Option, Struct, u128, u64 } from "@polkadot-api/substrate-bindings";
import { fromHex, toHex } from "./hex.js";

const CONTEXT = new TextEncoder().encode("provenant/voucher");
const voucher = Struct({ channel: u64, job: Option(u64), cumulative: u128 });

/**
 * The bytes a consumer signs to promise `cumulative` in all, for `job`'s adapter (or the base
 * model when `job` is undefined), on `channel` of the chain with `genesis` (0x hex).
 * @param {string} genesis
 * @param {{ channel: bigint, job: bigint | undefined, cumulative: bigint }} terms
 */
export function voucherPayload(genesis, { channel, job, cumulative }) {
  const encoded = voucher.enc({ channel, job, cumulative });
  const hash = fromHex(genesis);
  const payload = new Uint8Array(CONTEXT.length + hash.length + encoded.length);
  payload.set(CONTEXT, 0);
  payload.set(hash, CONTEXT.length);
  payload.set(encoded, CONTEXT.length + hash.length);
  return payload;
}

/**
 * Signs what a paid server's refusal asks for: `required` is its `{channel, job, cumulative}`.
 * Returns the request's `payment` field.
 * @param {string} genesis
 * @param {{ channel: number, job: number | null, cumulative: string }} required
 * @param {(bytes: Uint8Array) => Promise<Uint8Array>} signBytes
 */
export async function signVoucher(genesis, required, signBytes) {
  const cumulative = BigInt(required.cumulative);
  const payload = voucherPayload(genesis, {
    channel: BigInt(required.channel),
    job: required.job === null ? undefined : BigInt(required.job),
    cumulative,
  });
  let signature = await signBytes(payload);
  // Some wallets prefix a MultiSignature's type (1 for sr25519); the server takes the 64 bytes.
  if (signature.length === 65 && signature[0] === 1) signature = signature.slice(1);
  return { channel: required.channel, cumulative: String(cumulative), signature: toHex(signature) };
}
