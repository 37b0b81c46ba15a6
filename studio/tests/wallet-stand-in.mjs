// A stand-in for a browser wallet extension (the injected-extension standard that Polkadot{.js},
// Talisman and SubWallet follow). It lives in the page as `window.injectedWeb3["polkadot-js"]`
// and hands each payload to this process, which signs it for real with a dev key, so every
// transaction Studio makes through it reaches the chain exactly as an extension's would.
import { sr25519CreateDerive } from "@polkadot-labs/hdkd";
import { DEV_PHRASE, entropyToMiniSecret, mnemonicToEntropy } from "@polkadot-labs/hdkd-helpers";
import { AccountId, Blake2256, compact, u32 } from "@polkadot-api/substrate-bindings";

const derive = sr25519CreateDerive(entropyToMiniSecret(mnemonicToEntropy(DEV_PHRASE)));
const hex = (bytes) => "0x" + Buffer.from(bytes).toString("hex");
const unhex = (text) => Uint8Array.from(Buffer.from(text.replace(/^0x/, ""), "hex"));

/** A dev account by its derivation path, e.g. `//Alice`. */
export function devPair(path) {
  const pair = derive(path);
  return { ...pair, address: AccountId(42).dec(pair.publicKey) };
}

// What each transaction extension adds to the signed payload: its explicit part and its
// implicit part, from the fields a wallet receives (polkadot.js's `SignerPayloadJSON`).
const EXTENSIONS = {
  CheckNonZeroSender: () => [[], []],
  CheckWeight: () => [[], []],
  CheckSpecVersion: (p) => [[], u32.enc(Number(p.specVersion))],
  CheckTxVersion: (p) => [[], u32.enc(Number(p.transactionVersion))],
  CheckGenesis: (p) => [[], unhex(p.genesisHash)],
  CheckMortality: (p) => [unhex(p.era), unhex(p.blockHash)],
  CheckEra: (p) => [unhex(p.era), unhex(p.blockHash)],
  CheckNonce: (p) => [compact.enc(Number(p.nonce)), []],
  ChargeTransactionPayment: (p) => [compact.enc(BigInt(p.tip)), []],
  CheckMetadataHash: (p) => [[p.mode ?? 0], p.mode ? [1, ...unhex(p.metadataHash)] : [0]],
};

/** The bytes an sr25519 wallet signs for `payload`, as the runtime will check them. */
export function signingPayload(payload) {
  const explicit = [];
  const implicit = [];
  for (const id of payload.signedExtensions) {
    const parts = EXTENSIONS[id];
    if (!parts) throw new Error(`the stand-in wallet does not know the ${id} extension`);
    const [e, i] = parts(payload);
    explicit.push(...e);
    implicit.push(...i);
  }
  const bytes = Uint8Array.from([...unhex(payload.method), ...explicit, ...implicit]);
  // Payloads over 256 bytes are signed by their hash, as the runtime verifies them.
  return bytes.length > 256 ? Blake2256(bytes) : bytes;
}

/**
 * Installs the stand-in in `page` (before any script of the page runs) with `accounts`, each
 * `{ path, name }`. Returns the list of payloads it signed.
 */
export async function installStandIn(page, accounts) {
  const pairs = accounts.map((a) => ({ ...devPair(a.path), name: a.name }));
  const signed = [];
  await page.exposeFunction("__standInSign", (payload) => {
    const pair = pairs.find((p) => p.address === payload.address);
    if (!pair) throw new Error(`the stand-in holds no key for ${payload.address}`);
    signed.push(payload);
    // A MultiSignature: 0x01 marks sr25519.
    return hex([1, ...pair.sign(signingPayload(payload))]);
  });
  // Raw bytes are signed wrapped in <Bytes>…</Bytes>, as extensions do, so that no message can
  // pass for a transaction.
  await page.exposeFunction("__standInSignRaw", (raw) => {
    const pair = pairs.find((p) => p.address === raw.address);
    if (!pair) throw new Error(`the stand-in holds no key for ${raw.address}`);
    const wrapped = Buffer.concat([Buffer.from("<Bytes>"), unhex(raw.data), Buffer.from("</Bytes>")]);
    return hex(pair.sign(wrapped));
  });
  const listed = pairs.map((p) => ({ address: p.address, name: p.name, type: "sr25519" }));
  await page.addInitScript((accountsInPage) => {
    window.injectedWeb3 = {
      "polkadot-js": {
        version: "stand-in",
        enable: async () => ({
          accounts: {
            get: async () => accountsInPage,
            subscribe: (callback) => {
              callback(accountsInPage);
              return () => {};
            },
          },
          signer: {
            signPayload: async (payload) => ({ id: 1, signature: await window.__standInSign(payload) }),
            signRaw: async (raw) => ({ id: 2, signature: await window.__standInSignRaw(raw) }),
          },
        }),
      },
    };
  }, listed);
  return signed;
}
