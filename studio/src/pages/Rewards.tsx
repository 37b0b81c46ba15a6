// Rewards: what the chosen account can claim now, by what earned it, what it earned in each
// datanet, and a claim.
import { Link } from "react-router-dom";
import { formatAmount, text } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { TxButton } from "../tx";
import { useWallet } from "../wallet";

/** The chain's sources of rewards (`pallet_rewards::RewardSource`), in its order, in words. */
const SOURCES = [
  {
    key: "contributions",
    label: "Contributions",
    how: "your part of each datanet's epoch pool, for accepted files",
    where: { to: "/contribute", words: "Contribute files" },
  },
  {
    key: "validation",
    label: "Validation",
    how: "your part of each datanet's epoch pool, for votes with the verdict",
    where: { to: "/validate", words: "Validate" },
  },
  {
    key: "ownership",
    label: "Datanet ownership",
    how: "the owner's part of each of your datanets' epoch pools",
    where: { to: "/datanets", words: "Create a datanet" },
  },
  {
    key: "training",
    label: "Training",
    how: "fine-tuning fees: a worker's pay for a run, and your files' shares of each run they trained",
    where: { to: "/factory", words: "ModelFactory" },
  },
  {
    key: "inference",
    label: "Inference",
    how: "paid answers: a server operator's part, and the trainer's and your files' shares of answers from their runs",
    where: { to: "/chat", words: "Chat" },
  },
] as const;

export function RewardsPage() {
  const chain = useChain();
  const { selected } = useWallet();
  const address = selected?.address;
  const state = useChainQuery(
    async ({ api }) => {
      if (!address) return undefined;
      const at = { at: "best" as const };
      const [claims, datanets, epoch] = await Promise.all([
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
      const total = SOURCES.reduce((sum, source) => sum + claims[source.key], 0n);
      return { claims, total, earned, epoch };
    },
    [address],
  );

  return (
    <section aria-labelledby="rewards-title">
      <h1 id="rewards-title">Rewards</h1>
      <p className="lede">
        Rewards are paid into a claimable balance at the end of each epoch (contributions, validation, datanet ownership)
        and as they happen (training fees and paid answers). Claiming moves all of them to your free balance at once.
      </p>
      {!selected && <p className="empty">Choose an account to see its rewards.</p>}
      <Pending state={state} />
      {state.status === "ready" && state.value && (
        <>
          <p className="big">
            Claimable by {selected?.name}: <strong data-testid="claimable">{formatAmount(chain, state.value.total)}</strong>
          </p>
          <div className="table-wrap">
            <table aria-label="Claimable by source">
              <thead>
                <tr>
                  <th scope="col">Source</th>
                  <th scope="col">Claimable</th>
                  <th scope="col">Earned by</th>
                </tr>
              </thead>
              <tbody>
                {SOURCES.map((source) => {
                  const amount = state.value!.claims[source.key];
                  return (
                    <tr key={source.key} data-testid={`source-${source.key}`}>
                      <th scope="row" className="wrap">
                        {source.label}
                      </th>
                      <td className="amount">{formatAmount(chain, amount)}</td>
                      <td className="wrap">
                        {source.how}
                        {amount === 0n && (
                          <>
                            {" "}
                            (<Link to={source.where.to}>{source.where.words}</Link>)
                          </>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <TxButton
            label="Claim everything"
            disabled={state.value.total === 0n}
            build={() => chain.api.tx.Rewards.claim()}
          />
          {state.value.total === 0n && (
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
