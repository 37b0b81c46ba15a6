// Rewards: what the chosen account can claim now, what it earned in each datanet, and a claim.
import { Link } from "react-router-dom";
import { formatAmount, text } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { TxButton } from "../tx";
import { useWallet } from "../wallet";

export function RewardsPage() {
  const chain = useChain();
  const { selected } = useWallet();
  const address = selected?.address;
  const state = useChainQuery(
    async ({ api }) => {
      if (!address) return undefined;
      const at = { at: "best" as const };
      const [claimable, datanets, epoch] = await Promise.all([
        api.query.Rewards.Claimable.getValue(address, at),
        api.query.Datanets.Datanets.getEntries(at),
        api.query.Rewards.CurrentEpoch.getValue(at),
      ]);
      const standings = await api.query.Rewards.Standings.getValues(
        datanets.map(({ keyArgs: [id] }) => [id, address] as [number, string]),
        at,
      );
      const earned = datanets
        .map(({ keyArgs: [id], value }, i) => ({ id, name: text(value.metadata.name), standing: standings[i] }))
        .filter((d) => d.standing && d.standing.earned > 0n);
      return { claimable, earned, epoch };
    },
    [address],
  );

  return (
    <section aria-labelledby="rewards-title">
      <h1 id="rewards-title">Rewards</h1>
      <p className="lede">
        Rewards are paid into a claimable balance at the end of each epoch (contributions and validation) and as they
        happen (training fees and paid answers). Claiming moves them to your free balance.
      </p>
      {!selected && <p className="empty">Choose an account to see its rewards.</p>}
      <Pending state={state} />
      {state.status === "ready" && state.value && (
        <>
          <p className="big">
            Claimable by {selected?.name}: <strong data-testid="claimable">{formatAmount(chain, state.value.claimable)}</strong>
          </p>
          <TxButton
            label="Claim"
            disabled={state.value.claimable === 0n}
            build={() => chain.api.tx.Rewards.claim()}
          />
          {state.value.claimable === 0n && (
            <p className="hint">Nothing to claim yet: epoch {state.value.epoch} is still running.</p>
          )}
          <h2>Earned from contributions, by datanet</h2>
          {state.value.earned.length === 0 ? (
            <p className="empty">
              Nothing earned from contributions yet. Contribute files to a <Link to="/datanets">datanet</Link>; accepted
              ones earn from its pool at each epoch's end.
            </p>
          ) : (
            <ul>
              {state.value.earned.map((d) => (
                <li key={d.id}>
                  <Link to={`/datanets/${d.id}`}>{d.name}</Link>: {formatAmount(chain, d.standing!.earned)}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
