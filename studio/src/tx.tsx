// Every transaction goes through here: its fee is shown before signing, and its result after,
// with the chain's named error in words when it fails.
import type { Transaction, TxEvent } from "polkadot-api";
import { useState } from "react";
import { describeDispatchError, formatAmount } from "./chain";
import { useChain } from "./connection";
import { useWallet } from "./wallet";

type Step =
  | { kind: "idle" }
  | { kind: "estimating" }
  | { kind: "confirm"; fee: bigint }
  | { kind: "signing" }
  | { kind: "pending"; note: string }
  | { kind: "done"; block: number; finalized: boolean }
  | { kind: "failed"; message: string };

// Why a pool or runtime refuses a transaction before it runs, in words.
const INVALID: Record<string, string> = {
  Payment: "the account cannot pay the fee",
  Stale: "its nonce was already used; try again",
  Future: "its nonce is ahead of the account's; try again",
  ExhaustsResources: "the block is full; try again",
  BadProof: "the signature does not match",
};

function describeThrown(error: unknown): string {
  const inner = (error as { error?: { type?: string; value?: { type?: string } } }).error;
  if (inner?.type && inner.value?.type) {
    const why = INVALID[inner.value.type];
    return `The chain refused the transaction: ${inner.type}.${inner.value.type}${why ? ` (${why})` : ""}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/cancel|reject/i.test(message)) return "Signing was cancelled.";
  return `The transaction failed: ${message}`;
}

export interface TxButtonProps {
  /** What the button says, e.g. "Create datanet". */
  label: string;
  /** The transaction, or a reason it cannot be made yet. */
  build: () => Transaction<any, any> | string;
  disabled?: boolean;
  /** Called once the transaction is in a block and succeeded. */
  onSuccess?: (events: { type: string; value: { type: string; value: unknown } }[]) => void;
}

export function TxButton({ label, build, disabled, onSuccess }: TxButtonProps) {
  const chain = useChain();
  const { selected } = useWallet();
  const [step, setStep] = useState<Step>({ kind: "idle" });
  const [tx, setTx] = useState<Transaction<any, any>>();

  const start = async () => {
    if (!selected) return setStep({ kind: "failed", message: "Choose an account first." });
    const made = build();
    if (typeof made === "string") return setStep({ kind: "failed", message: made });
    setTx(made);
    setStep({ kind: "estimating" });
    try {
      setStep({ kind: "confirm", fee: await made.getEstimatedFees(selected.address) });
    } catch (error) {
      setStep({ kind: "failed", message: describeThrown(error) });
    }
  };

  const submit = async (attempt = 1) => {
    if (!tx || !selected) return;
    setStep({ kind: "signing" });
    // The node's next nonce counts this account's transactions still in its pool, so one sent
    // from another tab or the CLI a moment ago is not clashed with.
    let nonce: number | undefined;
    try {
      nonce = await chain.client._request<number>("system_accountNextIndex", [selected.address]);
    } catch {
      nonce = undefined; // polkadot-api then reads it from the chain's state.
    }
    let reported = false;
    const retry = (error: unknown) => {
      const kind = (error as { error?: { value?: { type?: string } } }).error?.value?.type;
      // A nonce taken meanwhile: sign again with the next one rather than drop the user's action.
      if ((kind === "Stale" || kind === "Future") && attempt < 3) {
        void submit(attempt + 1);
        return true;
      }
      return false;
    };
    const subscription = tx.signSubmitAndWatch(selected.signer, nonce === undefined ? undefined : { nonce }).subscribe({
      next: (event: TxEvent) => {
        if (event.type === "signed") setStep({ kind: "pending", note: "Signed; sending to the node…" });
        if (event.type === "broadcasted") setStep({ kind: "pending", note: "Sent; waiting for a block…" });
        const found = (event.type === "txBestBlocksState" && event.found) || event.type === "finalized";
        if (!found) return;
        if (!event.ok) {
          setStep({ kind: "failed", message: describeDispatchError(chain, event.dispatchError) });
          subscription.unsubscribe();
          return;
        }
        setStep({ kind: "done", block: event.block.number, finalized: event.type === "finalized" });
        if (!reported) {
          reported = true;
          onSuccess?.(event.events);
        }
      },
      error: (error: unknown) => {
        if (!retry(error)) setStep({ kind: "failed", message: describeThrown(error) });
      },
    });
  };

  const busy = step.kind === "estimating" || step.kind === "signing" || step.kind === "pending";
  return (
    <div className="tx">
      {step.kind !== "confirm" && (
        <button type="button" onClick={() => void start()} disabled={disabled || busy}>
          {label}
        </button>
      )}
      {step.kind === "estimating" && <p role="status">Estimating the fee…</p>}
      {step.kind === "confirm" && (
        <div className="confirm" role="group" aria-label={`Confirm: ${label}`}>
          <p>
            {label} as <strong>{selected?.name}</strong>. Fee: <strong data-testid="fee">{formatAmount(chain, step.fee)}</strong>
          </p>
          <button type="button" onClick={() => void submit()}>
            Sign and submit
          </button>
          <button type="button" className="secondary" onClick={() => setStep({ kind: "idle" })}>
            Cancel
          </button>
        </div>
      )}
      {step.kind === "signing" && <p role="status">Waiting for the signature…</p>}
      {step.kind === "pending" && <p role="status">{step.note}</p>}
      {step.kind === "done" && (
        <p role="status" className="ok">
          Done: in block #{step.block}
          {step.finalized ? ", finalized" : ""}.
        </p>
      )}
      {step.kind === "failed" && (
        <p role="alert" className="error">
          {step.message}
        </p>
      )}
    </div>
  );
}
