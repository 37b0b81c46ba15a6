// One datanet: its rules, its pool, its leaderboard and its contributions with their verdicts.
import { Link, useParams } from "react-router-dom";
import { formatAmount, formatBytes, shortAddress, text } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { formatNames } from "../rules";
import { TxButton } from "../tx";
import { REASON_WORDS } from "../votes";
import { useWallet } from "../wallet";


/** Perbill as a percentage with one decimal. */
const percent = (perbill: number) => `${(perbill / 1e7).toFixed(1)}%`;

export function DatanetPage() {
  const chain = useChain();
  const { selected } = useWallet();
  const param = useParams().id;
  const id = Number(param);
  const state = useChainQuery(
    async ({ api }) => {
      const at = { at: "best" as const };
      const info = await api.query.Datanets.Datanets.getValue(id, at);
      if (!info) return undefined;
      const [pool, standings, contributions] = await Promise.all([
        api.query.Rewards.Pools.getValue(id, at),
        api.query.Rewards.Standings.getEntries(id, at),
        api.query.Datanets.Contributions.getEntries(at),
      ]);
      const mine = contributions
        .map(({ keyArgs: [key], value }) => ({ id: key, ...value }))
        .filter((c) => c.datanet === id)
        .sort((a, b) => Number(b.id - a.id));
      const verdicts = await api.query.Validation.Verdicts.getValues(
        mine.map((c) => [c.id] as [bigint]),
        at,
      );
      const board = standings
        .map(({ keyArgs: [, who], value }) => ({ who, ...value }))
        .sort((a, b) => b.score - a.score || b.accepted - a.accepted);
      return { info, pool, board, contributions: mine.map((c, i) => ({ ...c, verdict: verdicts[i] })) };
    },
    [id],
  );

  if (!Number.isInteger(id) || id < 0) return <p role="alert">“{param}” is not a datanet number.</p>;
  if (state.status !== "ready") return <Pending state={state} />;
  if (!state.value)
    return (
      <section>
        <h1>Datanet {id}</h1>
        <p role="alert">There is no datanet {id} on this chain.</p>
        <Link to="/datanets">All datanets</Link>
      </section>
    );
  const { info, pool, board, contributions } = state.value;
  return (
    <section aria-labelledby="datanet-title">
      <p>
        <Link to="/datanets">← All datanets</Link>
      </p>
      <h1 id="datanet-title">
        {text(info.metadata.name)} <span className="muted">#{id}</span>
      </h1>
      {info.metadata.summary.length > 0 && <p className="lede">{text(info.metadata.summary)}</p>}
      <dl className="facts">
        <dt>Kind</dt>
        <dd>{info.kind.type}</dd>
        <dt>Formats</dt>
        <dd>{formatNames(info.formats).join(", ")}</dd>
        <dt>Largest file</dt>
        <dd>{formatBytes(info.caps.max_file_bytes)}</dd>
        <dt>Admitted per day</dt>
        <dd>{formatBytes(info.caps.daily_bytes)}</dd>
        <dt>Status</dt>
        <dd>{info.status.type}</dd>
        <dt>Owner</dt>
        <dd title={info.owner}>{shortAddress(info.owner)}</dd>
        <dt>Reward pool</dt>
        <dd data-testid="pool">{formatAmount(chain, pool)}</dd>
        {info.metadata.tags.length > 0 && (
          <>
            <dt>Tags</dt>
            <dd>{info.metadata.tags.map(text).join(", ")}</dd>
          </>
        )}
      </dl>

      {selected?.address === info.owner && (
        <div className="card" role="group" aria-labelledby="owner-title">
          <h2 id="owner-title">You own this datanet</h2>
          {info.status.type === "Active" && (
            <TxButton key="pause" label="Pause contributions" build={() => chain.api.tx.Datanets.pause({ datanet: id })} />
          )}
          {info.status.type === "Paused" && (
            <TxButton key="resume" label="Resume contributions" build={() => chain.api.tx.Datanets.resume({ datanet: id })} />
          )}
          <p className="hint">
            {info.status.type === "Closed"
              ? "It is closed for good and its deposit was returned to you. Its contributions stay on record."
              : "Closing is for good: the datanet takes no more files and its deposit returns to you. Its contributions stay on record."}
          </p>
          {/* Stays mounted once closed, so the result of a close sent from here stays in view. */}
          <TxButton
            key="close"
            label="Close datanet"
            disabled={info.status.type === "Closed"}
            build={() => chain.api.tx.Datanets.close({ datanet: id })}
          />
        </div>
      )}

      <h2 id="board-title">Leaderboard</h2>
      {board.length === 0 ? (
        <p className="empty">No contributor has a verdict here yet. Ranks follow the share of files accepted, not volume.</p>
      ) : (
        <div className="table-wrap">
          <table aria-labelledby="board-title">
            <thead>
              <tr>
                <th scope="col">Rank</th>
                <th scope="col">Contributor</th>
                <th scope="col">Score</th>
                <th scope="col">Accepted</th>
                <th scope="col">Rejected (fading)</th>
                <th scope="col">Earned</th>
              </tr>
            </thead>
            <tbody>
              {board.map((s, i) => (
                <tr key={s.who}>
                  <td>{i + 1}</td>
                  <td title={s.who}>{shortAddress(s.who)}</td>
                  <td>{percent(s.score)}</td>
                  <td>{s.accepted}</td>
                  <td>{(Number(s.rejected) / 1e18).toFixed(2)}</td>
                  <td>{formatAmount(chain, s.earned)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2 id="contributions-title">Contributions</h2>
      {contributions.length === 0 ? (
        <p className="empty">No file has been contributed yet.</p>
      ) : (
        <div className="table-wrap">
          <table aria-labelledby="contributions-title">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Contributor</th>
                <th scope="col">Format</th>
                <th scope="col">Size</th>
                <th scope="col">Verdict</th>
                <th scope="col">Content hash</th>
              </tr>
            </thead>
            <tbody>
              {contributions.map((c) => (
                <tr key={String(c.id)}>
                  <td>{String(c.id)}</td>
                  <td title={c.contributor}>{shortAddress(c.contributor)}</td>
                  <td>{c.format.type.toLowerCase()}</td>
                  <td>{formatBytes(c.size)}</td>
                  <td className={`status-${c.status.type.toLowerCase()}`}>
                    {c.status.type}
                    {c.verdict?.reason ? `: ${REASON_WORDS[c.verdict.reason.type] ?? c.verdict.reason.type}` : ""}
                  </td>
                  <td className="mono" title={c.hash}>
                    {c.hash.slice(0, 18)}…
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
