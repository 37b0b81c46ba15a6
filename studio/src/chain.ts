// The connection to the node: the typed API generated from the runtime's metadata, the chain's
// token, and the runtime's own words for each error.
import { provenant } from "@polkadot-api/descriptors";
import { decAnyMetadata, unifyMetadata } from "@polkadot-api/substrate-bindings";
import type { PolkadotClient, TypedApi } from "polkadot-api";
import { createWsClient } from "polkadot-api/ws";

export type Api = TypedApi<typeof provenant>;

export interface Chain {
  url: string;
  client: PolkadotClient;
  api: Api;
  /** The chain's name, as its spec gives it. */
  name: string;
  /** 0x hex: what signed messages name to be good on this chain only. */
  genesisHash: string;
  /** A development chain, whose well-known accounts Studio offers. */
  isDev: boolean;
  decimals: number;
  symbol: string;
  ss58Prefix: number;
  /** `Pallet.Error` to the runtime's documentation of it. */
  errorDocs: Map<string, string>;
}

/** The node to talk to: `?chain=` in the address, else what the server that serves Studio says. */
export async function chainUrl(): Promise<string> {
  const fromQuery = new URLSearchParams(window.location.search).get("chain");
  if (fromQuery) return fromQuery;
  try {
    const response = await fetch("/config.json");
    if (response.ok) {
      const config = (await response.json()) as { chain?: string | null };
      if (config.chain) return config.chain;
    }
  } catch {
    // Served without the inference server: fall back to the local node.
  }
  return "ws://127.0.0.1:9944";
}

export async function connect(url: string): Promise<Chain> {
  const client = createWsClient(url);
  const api = client.getTypedApi(provenant);
  const [spec, chainType, finalized] = await Promise.all([
    client.getChainSpecData(),
    client._request<unknown>("system_chainType", []),
    client.getFinalizedBlock(),
  ]);
  const properties = (spec.properties ?? {}) as Record<string, unknown>;
  const metadata = await client.getMetadata(finalized.hash);
  return {
    url,
    client,
    api,
    name: spec.name,
    genesisHash: spec.genesisHash,
    isDev: chainType === "Development" || chainType === "Local",
    decimals: Number(properties.tokenDecimals ?? 12),
    symbol: String(properties.tokenSymbol ?? "PRV"),
    ss58Prefix: Number(properties.ss58Format ?? 42),
    errorDocs: errorDocs(metadata),
  };
}

function errorDocs(raw: Uint8Array): Map<string, string> {
  const metadata = unifyMetadata(decAnyMetadata(raw));
  const docs = new Map<string, string>();
  for (const pallet of metadata.pallets) {
    const ref = pallet.errors as unknown;
    const typeId = typeof ref === "number" ? ref : (ref as { type?: number } | undefined)?.type;
    if (typeId === undefined) continue;
    const def = metadata.lookup[typeId]?.def;
    if (def?.tag !== "variant") continue;
    for (const variant of def.value) {
      docs.set(`${pallet.name}.${variant.name}`, variant.docs.join(" ").trim());
    }
  }
  return docs;
}

export { formatAmount, parseAmount } from "./amount.js";

/** A dispatch error in words: the pallet's name for it and the runtime's documentation. */
export function describeDispatchError(chain: Chain, error: { type: string; value: unknown }): string {
  if (error.type === "Module") {
    const inner = error.value as { type: string; value?: { type: string } };
    const name = `${inner.type}.${inner.value?.type ?? "?"}`;
    const docs = chain.errorDocs.get(name);
    return docs ? `${name}: ${docs}` : name;
  }
  const detail = (error.value as { type?: string } | undefined)?.type;
  return detail ? `${error.type}.${detail}` : error.type;
}

const utf8 = new TextDecoder();
export const text = (bytes: Uint8Array): string => utf8.decode(bytes);
export const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

/** `12.5 MiB`, `300 KiB`, `17 B`. */
export function formatBytes(count: number | bigint): string {
  const n = Number(count);
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(2)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

export const shortAddress = (address: string): string => `${address.slice(0, 6)}…${address.slice(-6)}`;
