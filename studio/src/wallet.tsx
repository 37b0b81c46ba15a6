// Accounts: those of browser extensions that follow the injected-extension standard
// (Polkadot{.js}, Talisman, SubWallet), and on a development chain the well-known dev accounts.
import { sr25519CreateDerive } from "@polkadot-labs/hdkd";
import { DEV_PHRASE, entropyToMiniSecret, mnemonicToEntropy } from "@polkadot-labs/hdkd-helpers";
import { AccountId } from "@polkadot-api/substrate-bindings";
import type { PolkadotSigner } from "polkadot-api";
import { connectInjectedExtension, getInjectedExtensions } from "polkadot-api/pjs-signer";
import { getPolkadotSigner } from "polkadot-api/signer";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useChain } from "./connection";

export interface Account {
  address: string;
  /** Unique among the accounts: the same key may sit in an extension and among the dev ones. */
  key: string;
  name: string;
  /** `dev`, or the extension's name. */
  source: string;
  signer: PolkadotSigner;
}

const DEV_NAMES = ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"];

function devAccounts(ss58Prefix: number): Account[] {
  const derive = sr25519CreateDerive(entropyToMiniSecret(mnemonicToEntropy(DEV_PHRASE)));
  const encode = AccountId(ss58Prefix).dec;
  return DEV_NAMES.map((name) => {
    const pair = derive(`//${name}`);
    return {
      address: encode(pair.publicKey),
      key: `dev:${name}`,
      name,
      source: "dev",
      signer: getPolkadotSigner(pair.publicKey, "Sr25519", pair.sign),
    };
  });
}

interface Wallet {
  accounts: Account[];
  selected: Account | undefined;
  /** Chooses an account by its `key`. */
  select: (key: string) => void;
  /** Extensions the page can see, and whether each is connected. */
  extensions: { name: string; connected: boolean }[];
  connectExtension: (name: string) => Promise<void>;
  extensionError: string | undefined;
}

const WalletContext = createContext<Wallet | undefined>(undefined);
const SELECTED_KEY = "provenant.account";

export function WalletProvider({ children }: { children: ReactNode }) {
  const chain = useChain();
  const dev = useMemo(() => (chain.isDev ? devAccounts(chain.ss58Prefix) : []), [chain]);
  const [fromExtensions, setFromExtensions] = useState<Record<string, Account[]>>({});
  const [available, setAvailable] = useState<string[]>([]);
  const [extensionError, setExtensionError] = useState<string>();
  const [selectedKey, setSelectedKey] = useState(() => localStorage.getItem(SELECTED_KEY) ?? "");

  // Extensions inject themselves as the page loads, sometimes after the app has started.
  useEffect(() => {
    const look = () => setAvailable(getInjectedExtensions());
    look();
    const timer = window.setTimeout(look, 500);
    return () => window.clearTimeout(timer);
  }, []);

  const connectExtension = useCallback(async (name: string) => {
    setExtensionError(undefined);
    try {
      const extension = await connectInjectedExtension(name, "Provenant Studio");
      const toAccounts = () =>
        extension.getAccounts().map((a) => ({
          address: a.address,
          key: `${name}:${a.address}`,
          name: a.name ?? a.address,
          source: name,
          signer: a.polkadotSigner,
        }));
      setFromExtensions((all) => ({ ...all, [name]: toAccounts() }));
      extension.subscribe(() => setFromExtensions((all) => ({ ...all, [name]: toAccounts() })));
    } catch (error) {
      setExtensionError(`${name} refused the connection: ${String(error)}`);
    }
  }, []);

  const accounts = useMemo(() => [...Object.values(fromExtensions).flat(), ...dev], [fromExtensions, dev]);
  const selected = accounts.find((a) => a.key === selectedKey) ?? accounts[0];
  const select = useCallback((key: string) => {
    localStorage.setItem(SELECTED_KEY, key);
    setSelectedKey(key);
  }, []);
  const extensions = available.map((name) => ({ name, connected: name in fromExtensions }));

  return (
    <WalletContext.Provider value={{ accounts, selected, select, extensions, connectExtension, extensionError }}>
      {children}
    </WalletContext.Provider>
  );
}

export function useWallet(): Wallet {
  const wallet = useContext(WalletContext);
  if (!wallet) throw new Error("useWallet outside WalletProvider");
  return wallet;
}

export function AccountPicker() {
  const { accounts, selected, select, extensions, connectExtension, extensionError } = useWallet();
  return (
    <div className="account-picker">
      <label htmlFor="account">Account</label>
      <select id="account" value={selected?.key ?? ""} onChange={(e) => select(e.target.value)}>
        {accounts.length === 0 && <option value="">No account: connect an extension</option>}
        {accounts.map((a) => (
          <option key={a.key} value={a.key}>
            {a.name} ({a.source === "dev" ? "dev" : a.source})
          </option>
        ))}
      </select>
      {extensions
        .filter((e) => !e.connected)
        .map((e) => (
          <button key={e.name} type="button" onClick={() => void connectExtension(e.name)}>
            Connect {e.name}
          </button>
        ))}
      {extensionError && <p role="alert" className="error">{extensionError}</p>}
    </div>
  );
}
