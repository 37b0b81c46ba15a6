// The chain connection as React state, and a hook that keeps a query current with the chain.
import { createContext, useContext, useEffect, useState, type DependencyList, type ReactNode } from "react";
import { chainUrl, connect, type Chain } from "./chain";

const ChainContext = createContext<Chain | undefined>(undefined);

export function ChainProvider({ children }: { children: ReactNode }) {
  const [chain, setChain] = useState<Chain>();
  const [error, setError] = useState<string>();
  const [url, setUrl] = useState<string>();

  useEffect(() => {
    let cancelled = false;
    void (async () => {
      const target = await chainUrl();
      setUrl(target);
      // The WebSocket client retries on its own; a node that never answers gets a word here.
      const timer = window.setTimeout(
        () => !cancelled && setError(`No answer from the node at ${target} yet. Is it running?`),
        8000,
      );
      try {
        const connected = await connect(target);
        if (!cancelled) {
          setChain(connected);
          setError(undefined);
        }
      } catch (e) {
        if (!cancelled) setError(`Could not connect to the node at ${target}: ${String(e)}`);
      } finally {
        window.clearTimeout(timer);
      }
    })();
    return () => {
      cancelled = true;
    };
  }, []);

  if (!chain) {
    return (
      <main className="connecting" aria-busy={!error}>
        <h1>Provenant Studio</h1>
        <p role={error ? "alert" : "status"}>{error ?? `Connecting to ${url ?? "the node"}…`}</p>
      </main>
    );
  }
  return <ChainContext.Provider value={chain}>{children}</ChainContext.Provider>;
}

export function useChain(): Chain {
  const chain = useContext(ChainContext);
  if (!chain) throw new Error("useChain outside ChainProvider");
  return chain;
}

export type Loaded<T> = { status: "loading" } | { status: "ready"; value: T } | { status: "error"; error: string };

/** Runs `read` now and again at every new best block, so the page follows the chain. */
export function useChainQuery<T>(read: (chain: Chain) => Promise<T>, deps: DependencyList): Loaded<T> {
  const chain = useChain();
  const [state, setState] = useState<Loaded<T>>({ status: "loading" });
  useEffect(() => {
    let cancelled = false;
    let running = false;
    const refresh = async () => {
      if (running) return;
      running = true;
      try {
        const value = await read(chain);
        if (!cancelled) setState({ status: "ready", value });
      } catch (e) {
        if (!cancelled) setState({ status: "error", error: String(e) });
      } finally {
        running = false;
      }
    };
    setState({ status: "loading" });
    void refresh();
    const subscription = chain.client.bestBlocks$.subscribe(() => void refresh());
    return () => {
      cancelled = true;
      subscription.unsubscribe();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [chain, ...deps]);
  return state;
}

/** What a query shows while it loads or when it fails. */
export function Pending({ state }: { state: Loaded<unknown> }) {
  if (state.status === "loading") return <p role="status">Loading from the chain…</p>;
  if (state.status === "error") return <p role="alert" className="error">Could not read the chain: {state.error}</p>;
  return null;
}
