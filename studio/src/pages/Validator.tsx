// The validator console: stake, the queue of files to judge with a preview, votes sealed and
// revealed for you, and your record.
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { formatAmount, formatBytes, parseAmount, text, type Chain } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { Preview } from "../preview";
import { TxButton } from "../tx";
import { ballotArg, forget, REASON_WORDS, REASONS, seal, storedVotes, type Reason, type Vote } from "../votes";
import { useWallet } from "../wallet";

async function readConsole(chain: Chain, me: string) {
  const { api } = chain;
  const at = { at: "best" as const };
  const [params, validator, block, datanets, contributions] = await Promise.all([
    api.query.Validation.CurrentParams.getValue(at),
    api.query.Validation.Validators.getValue(me, at),
    api.query.System.Number.getValue(at),
    api.query.Datanets.Datanets.getEntries(at),
    api.query.Datanets.Contributions.getEntries(at),
  ]);
  const served = new Set(validator?.datanets ?? []);
  const pending = contributions
    .map(({ keyArgs: [id], value }) => ({ id, ...value }))
    .filter((c) => c.status.type === "Pending" && served.has(c.datanet) && c.contributor !== me)
    .sort((a, b) => Number(a.id - b.id));
  const commits = await api.query.Validation.Commits.getValues(
    pending.map((c) => [c.id, me] as [bigint, string]),
    at,
  );
  const stored = storedVotes(me);
  const decided = stored.filter((v) => !pending.some((c) => String(c.id) === v.contribution));
  const verdicts = await api.query.Validation.Verdicts.getValues(
    decided.map((v) => [BigInt(v.contribution)] as [bigint]),
    at,
  );
  return {
    params,
    validator,
    block,
    datanets: datanets
      .map(({ keyArgs: [id], value }) => ({ id, name: text(value.metadata.name), status: value.status.type }))
      .sort((a, b) => a.id - b.id),
    queue: pending.map((c, i) => ({
      ...c,
      commit: commits[i],
      commitEnd: c.block + params.commit_period,
      revealEnd: c.block + params.commit_period + params.reveal_period,
      sealed: stored.find((v) => v.contribution === String(c.id)),
    })),
    record: decided.map((v, i) => ({ ...v, verdict: verdicts[i] })),
  };
}

type Console = Awaited<ReturnType<typeof readConsole>>;

function Judge({ item, me }: { item: Console["queue"][number]; me: string }) {
  const chain = useChain();
  const [reason, setReason] = useState<Reason>("LowQuality");
  const judge = (vote: Vote) => () => {
    // The salt is kept before the commitment leaves the browser, so the reveal cannot be lost.
    const { commitment } = seal(me, item.id, vote);
    return chain.api.tx.Validation.commit({ contribution: item.id, commitment: commitment as `0x${string}` });
  };
  const format = item.format.type.toLowerCase();
  return (
    <article className="card judge" aria-label={`Contribution ${item.id}`}>
      <h3>
        #{String(item.id)} · {format} · {formatBytes(item.size)}
      </h3>
      <p className="hint">Open for ballots until block {item.commitEnd}.</p>
      <Preview hash={item.hash} format={format} />
      <div className="vote-row">
        <TxButton label={`Accept #${item.id}`} build={judge({ accept: true })} />
        <div className="field inline-field">
          <label htmlFor={`reason-${item.id}`}>Reason to reject #{String(item.id)}</label>
          <select id={`reason-${item.id}`} value={reason} onChange={(e) => setReason(e.target.value as Reason)}>
            {REASONS.map((r) => (
              <option key={r} value={r}>
                {REASON_WORDS[r]}
              </option>
            ))}
          </select>
        </div>
        <TxButton label={`Reject #${item.id}`} build={judge({ accept: false, reason })} />
      </div>
    </article>
  );
}

/** Sends the reveal of every sealed ballot whose reveal window is open, once each. */
function useRevealer(data: Console | undefined, me: string | undefined) {
  const chain = useChain();
  const { selected } = useWallet();
  const inFlight = useRef(new Set<string>());
  const [notes, setNotes] = useState<Record<string, string>>({});
  useEffect(() => {
    if (!data || !me || !selected || selected.address !== me) return;
    for (const item of data.queue) {
      const key = String(item.id);
      const open = data.block + 1 > item.commitEnd && data.block + 1 <= item.revealEnd;
      if (!item.commit || item.commit.revealed || !item.sealed || !open || inFlight.current.has(key)) continue;
      inFlight.current.add(key);
      setNotes((n) => ({ ...n, [key]: "revealing your ballot…" }));
      chain.api.tx.Validation.reveal({ contribution: item.id, ballot: ballotArg(item.sealed.vote), salt: item.sealed.salt as `0x${string}` })
        .signAndSubmit(selected.signer)
        .then((result) =>
          setNotes((n) => ({ ...n, [key]: result.ok ? `revealed in block #${result.block.number}` : `the reveal failed: ${result.dispatchError.type}` })),
        )
        .catch((e) => {
          // Leave it to the next block to try again.
          inFlight.current.delete(key);
          setNotes((n) => ({ ...n, [key]: `the reveal will be retried: ${e instanceof Error ? e.message : String(e)}` }));
        });
    }
  }, [chain, data, me, selected]);
  return notes;
}

const voteWords = (vote: Vote) => (vote.accept ? "accept" : `reject (${REASON_WORDS[vote.reason]})`);

export function ValidatorPage() {
  const chain = useChain();
  const { selected } = useWallet();
  const me = selected?.address;
  const state = useChainQuery(async (c) => (me ? readConsole(c, me) : undefined), [me]);
  const data = state.status === "ready" ? state.value : undefined;
  const notes = useRevealer(data, me);
  const [amount, setAmount] = useState("100");
  const [serve, setServe] = useState<number[] | undefined>(undefined);
  const [unbondAmount, setUnbondAmount] = useState("");

  if (!me) return <p className="empty">Choose an account to act as a validator.</p>;
  if (!data) return <Pending state={state} />;
  const { params, validator, block, queue, record, datanets } = data;
  const serving = serve ?? validator?.datanets ?? [];
  let bondError: string | undefined;
  let plancks = 0n;
  try {
    plancks = amount.trim() ? parseAmount(chain, amount) : 0n;
  } catch (e) {
    bondError = (e as Error).message;
  }
  const total = (validator?.bonded ?? 0n) + plancks;
  const needed = params.min_stake_per_datanet * BigInt(serving.length);
  if (!bondError && serving.length === 0) bondError = "Choose at least one datanet to serve.";
  if (!bondError && total < needed)
    bondError = `Serving ${serving.length} datanet(s) takes ${formatAmount(chain, needed)} bonded; you would have ${formatAmount(chain, total)}.`;
  const toJudge = queue.filter((c) => !c.commit && block + 1 <= c.commitEnd);
  const sealed = queue.filter((c) => c.commit);

  return (
    <section aria-labelledby="validator-title">
      <h1 id="validator-title">Validator console</h1>
      <p className="lede">
        Stake on the datanets you judge. Each file gets a sealed ballot (commit), opened after the window closes (reveal):
        Studio keeps your salt and reveals for you while this page is open. Stake is slashed only when you vote against a
        supermajority ({(params.wrong_vote_slash / 1e7).toFixed(0)}%) or never reveal ({(params.no_reveal_slash / 1e7).toFixed(0)}%).
      </p>

      <div className="card" role="group" aria-labelledby="stake-title">
        <h2 id="stake-title">Your stake</h2>
        {validator ? (
          <p data-testid="stake">
            Bonded <strong>{formatAmount(chain, validator.bonded)}</strong>, serving{" "}
            {validator.datanets.map((d) => `#${d}`).join(", ") || "no datanet"}
            {validator.unbonding > 0n &&
              `; unbonding ${formatAmount(chain, validator.unbonding)} until block ${validator.unlocks_at}`}
            .
          </p>
        ) : (
          <p className="empty">Not a validator yet: bond at least {formatAmount(chain, params.min_stake_per_datanet)} per datanet you serve.</p>
        )}
        <fieldset className="field">
          <legend>Datanets to serve</legend>
          {datanets.filter((d) => d.status !== "Closed").length === 0 && <p className="empty">No open datanet yet.</p>}
          {datanets
            .filter((d) => d.status !== "Closed")
            .map((d) => (
              <label key={d.id} className="inline">
                <input
                  type="checkbox"
                  checked={serving.includes(d.id)}
                  onChange={(e) => setServe(e.target.checked ? [...serving, d.id] : serving.filter((x) => x !== d.id))}
                />
                #{d.id} {d.name}
              </label>
            ))}
        </fieldset>
        <div className="field">
          <label htmlFor="bond-amount">Add to your stake ({chain.symbol})</label>
          <input id="bond-amount" value={amount} onChange={(e) => setAmount(e.target.value)} aria-invalid={bondError ? true : undefined} />
          {bondError && <small className="error">{bondError}</small>}
        </div>
        <TxButton
          label="Bond"
          disabled={!!bondError}
          build={() => chain.api.tx.Validation.bond({ datanets: serving, amount: plancks })}
          onSuccess={() => setServe(undefined)}
        />
        {validator && validator.bonded > 0n && (
          <>
            <div className="field">
              <label htmlFor="unbond-amount">Unbond ({chain.symbol}; it stops voting at once and unlocks after {params.unbonding_delay} blocks)</label>
              <input id="unbond-amount" value={unbondAmount} onChange={(e) => setUnbondAmount(e.target.value)} />
            </div>
            <TxButton
              label="Unbond"
              disabled={!unbondAmount.trim()}
              build={() => {
                try {
                  return chain.api.tx.Validation.unbond({ amount: parseAmount(chain, unbondAmount) });
                } catch (e) {
                  return (e as Error).message;
                }
              }}
            />
          </>
        )}
        {validator && validator.unbonding > 0n && (
          <TxButton
            label="Withdraw unbonded stake"
            disabled={block < validator.unlocks_at}
            build={() => chain.api.tx.Validation.withdraw()}
          />
        )}
      </div>

      <h2>Files to judge</h2>
      {!validator ? (
        <p className="empty">Bond first; the files of the datanets you serve then appear here.</p>
      ) : toJudge.length === 0 ? (
        <p className="empty">Nothing waits for your ballot. New files in the datanets you serve appear here as they arrive.</p>
      ) : (
        toJudge.map((item) => <Judge key={String(item.id)} item={item} me={me} />)
      )}

      <h2>Your sealed ballots</h2>
      {sealed.length === 0 ? (
        <p className="empty">No ballot waiting to be revealed or closed.</p>
      ) : (
        <ul className="ballots">
          {sealed.map((c) => (
            <li key={String(c.id)} data-testid={`ballot-${c.id}`}>
              #{String(c.id)}: {c.sealed ? voteWords(c.sealed.vote) : "sealed elsewhere (no salt in this browser)"} —{" "}
              {c.commit?.revealed
                ? "revealed; the vote closes after block " + c.revealEnd
                : notes[String(c.id)] ??
                  (block + 1 <= c.commitEnd
                    ? `sealed; Studio reveals it after block ${c.commitEnd}`
                    : block + 1 <= c.revealEnd
                      ? "reveal window open"
                      : "the reveal window has passed")}
            </li>
          ))}
        </ul>
      )}

      <h2>Your record</h2>
      {record.length === 0 ? (
        <p className="empty">No vote of yours has closed yet.</p>
      ) : (
        <ul>
          {record.map((v) => {
            const status = v.verdict?.status.type;
            const agreed = status && (status === "Accepted") === v.vote.accept;
            return (
              <li key={v.contribution}>
                #{v.contribution}: you voted {voteWords(v.vote)};{" "}
                {v.verdict ? `the verdict was ${status}${agreed ? ", with you" : ", against you"}` : "no verdict recorded"}
                {v.verdict && v.verdict.slashed > 0n ? ` (${formatAmount(chain, v.verdict.slashed)} slashed in that vote)` : ""}
                .{" "}
                <button type="button" className="link" onClick={() => forget(me, v.contribution)}>
                  Forget
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <p className="hint">
        Run <code>provenant validator auto</code> to judge and reveal without this page; see <Link to="/datanets">datanets</Link>{" "}
        for each one's verdicts.
      </p>
    </section>
  );
}
