// Paying a paid inference server from Studio: the chosen account's open channel to the server's
// operator (or a form to open one), and the payer that signs each voucher the server asks for.
import { useState } from "react";
import { formatAmount, parseAmount, shortAddress } from "./chain";
import { Pending, useChain, useChainQuery } from "./connection";
import type { Payer } from "./openai";
import { TxButton } from "./tx";
import { signVoucher } from "./voucher.js";
import { useWallet } from "./wallet";

export interface Channel {
  id: number;
  deposit: bigint;
  settled: bigint;
}

/**
 * The operator's price, and the chosen account's newest open channel to it, `final` once its
 * block is: the server reads channels from the finalized chain.
 */
export function usePayment(operator: string | undefined) {
  const { selected } = useWallet();
  const address = selected?.address;
  return useChainQuery(
    async ({ api }) => {
      if (!operator || !address) return undefined;
      const at = { at: "best" as const };
      const [price, channels, final] = await Promise.all([
        api.query.Inference.Prices.getValue(operator, at),
        api.query.Inference.Channels.getEntries(at),
        api.query.Inference.Channels.getEntries({ at: "finalized" }),
      ]);
      const open = channels
        .filter(({ value }) => value.consumer === address && value.operator === operator && value.closes_at === undefined)
        .map(({ keyArgs: [id], value }) => ({
          id: Number(id),
          deposit: value.deposit,
          settled: value.settled.reduce((sum, model) => sum + model.cumulative, 0n),
        }))
        .sort((a, b) => b.id - a.id);
      const channel = open[0] as Channel | undefined;
      const isFinal = channel !== undefined && final.some(({ keyArgs: [id] }) => Number(id) === channel.id);
      return { price, channel, final: isFinal };
    },
    [operator, address],
  );
}

/** Signs, as the chosen account, the vouchers the server asks for on `channel`. */
export function usePayer(channel: Channel | undefined): Payer | undefined {
  const chain = useChain();
  const { selected } = useWallet();
  if (!channel || !selected) return undefined;
  return {
    channel: channel.id,
    sign: (required) => signVoucher(chain.genesisHash, required, (bytes) => selected.signer.signBytes(bytes)),
  };
}

export function PaymentPanel({ operator }: { operator: string }) {
  const chain = useChain();
  const { selected } = useWallet();
  const state = usePayment(operator);
  const [deposit, setDeposit] = useState("1");
  let depositError: string | undefined;
  let plancks = 0n;
  try {
    plancks = parseAmount(chain, deposit);
    if (plancks <= 0n) depositError = "The deposit must be more than zero.";
  } catch (e) {
    depositError = e instanceof Error ? e.message : String(e);
  }
  return (
    <section className="payment" aria-labelledby="payment-title">
      <h2 id="payment-title">Payment</h2>
      <Pending state={state} />
      {state.status === "ready" && state.value && (
        <>
          <p>
            This server charges for answers:{" "}
            {state.value.price === undefined
              ? "its operator has set no price"
              : `${formatAmount(chain, state.value.price)} per token`}
            , paid to operator <span className="mono">{shortAddress(operator)}</span> from a payment channel. Each answer
            asks your wallet to sign a voucher for what it may cost; unused tokens are given back. The operator settles the
            vouchers on chain, which splits each payment between the operator, the trainer, the datanets and the contributors
            by the published rule.
          </p>
          {state.value.channel && !state.value.final ? (
            <p role="status">
              Channel {state.value.channel.id} is open; the server takes it once its block is final, in a few seconds…
            </p>
          ) : state.value.channel ? (
            <p data-testid="channel">
              Paying from channel {state.value.channel.id}: deposit {formatAmount(chain, state.value.channel.deposit)},
              of which {formatAmount(chain, state.value.channel.settled)} is settled.
            </p>
          ) : (
            <>
              <p className="hint">{selected?.name ?? "This account"} has no open channel to this operator yet.</p>
              <div className="field">
                <label htmlFor="channel-deposit">Deposit ({chain.symbol})</label>
                <input
                  id="channel-deposit"
                  value={deposit}
                  aria-invalid={depositError !== undefined}
                  aria-describedby="channel-deposit-help"
                  onChange={(e) => setDeposit(e.target.value)}
                />
                <p id="channel-deposit-help" className={depositError ? "error" : "hint"}>
                  {depositError ?? "Held on chain; what answers do not use comes back when the channel closes."}
                </p>
              </div>
              <TxButton
                label="Open a payment channel"
                disabled={depositError !== undefined}
                build={() => chain.api.tx.Inference.open({ operator, deposit: plancks })}
              />
            </>
          )}
        </>
      )}
    </section>
  );
}
