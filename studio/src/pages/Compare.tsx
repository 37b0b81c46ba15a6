// Two runs on one chart, with their settings side by side and the differences marked.
import { Link, useSearchParams } from "react-router-dom";
import { Chart } from "../chart";
import { Pending, useChainQuery } from "../connection";
import { MICRO } from "../jobspec.js";
import { fromChain, readRuns } from "./Factory";
import { useProgress } from "../progress";
import { settings } from "./Run";

const COLORS = ["#2455c3", "#c25400"];

export function ComparePage() {
  const [params] = useSearchParams();
  const ids = (params.get("runs") ?? "")
    .split(",")
    .filter((x) => /^\d+$/.test(x))
    .map(BigInt)
    .slice(0, 2);
  const state = useChainQuery(readRuns, []);
  const jobs = state.status === "ready" ? ids.map((id) => state.value.jobs.find((j) => j.id === id)) : [];
  const first = useProgress(jobs[0]?.id, false);
  const second = useProgress(jobs[1]?.id, false);

  if (ids.length !== 2) return <p role="alert">Name two runs to compare, as in /compare?runs=0,1.</p>;
  if (state.status !== "ready") return <Pending state={state} />;
  const missing = ids.filter((_, i) => !jobs[i]);
  if (missing.length > 0) return <p role="alert">There is no run {missing.join(" or ")} on this chain.</p>;
  const [a, b] = jobs as NonNullable<(typeof jobs)[number]>[];
  const rowsA = settings(fromChain(a.params));
  const rowsB = settings(fromChain(b.params));
  const loss = (r: typeof a.result, key: "train_loss" | "eval_loss") =>
    r && r[key] !== undefined ? (r[key]! / MICRO).toFixed(4) : "—";
  return (
    <section aria-labelledby="compare-title">
      <p>
        <Link to="/factory">← All runs</Link>
      </p>
      <h1 id="compare-title">
        Run {String(a.id)} and run {String(b.id)}
      </h1>
      {first.steps.length + second.steps.length === 0 ? (
        <p className="empty">This server holds no progress log for either run.</p>
      ) : (
        <Chart
          title={`Training and held-out loss of runs ${a.id} and ${b.id} by step`}
          xLabel="step"
          yLabel="loss"
          lines={[first, second].flatMap((p, i) => {
            const train = { label: `run ${ids[i]}`, color: COLORS[i], points: p.steps.map((s): [number, number] => [s.step, s.loss]) };
            const heldOut = p.steps.flatMap((s): [number, number][] => (s.eval_loss === undefined ? [] : [[s.step, s.eval_loss]]));
            return heldOut.length === 0 ? [train] : [train, { label: `run ${ids[i]} held out`, color: COLORS[i], dash: [6, 4], points: heldOut }];
          })}
        />
      )}
      <div className="table-wrap">
        <table aria-label="Settings and results side by side">
          <thead>
            <tr>
              <th scope="col">Setting</th>
              <th scope="col">Run {String(a.id)}</th>
              <th scope="col">Run {String(b.id)}</th>
            </tr>
          </thead>
          <tbody>
            {rowsA.map(([name, value], i) => {
              const differs = value !== rowsB[i][1];
              return (
                <tr key={name} className={differs ? "differs" : undefined}>
                  <th scope="row">
                    {name}
                    {differs && <span className="visually-hidden"> (differs)</span>}
                  </th>
                  <td>{value}</td>
                  <td>{rowsB[i][1]}</td>
                </tr>
              );
            })}
            <tr>
              <th scope="row">final train loss</th>
              <td>{loss(a.result, "train_loss")}</td>
              <td>{loss(b.result, "train_loss")}</td>
            </tr>
            <tr>
              <th scope="row">eval loss</th>
              <td>{loss(a.result, "eval_loss")}</td>
              <td>{loss(b.result, "eval_loss")}</td>
            </tr>
          </tbody>
        </table>
      </div>
    </section>
  );
}
