// One run: its job on chain, its worker, the loss as the worker trains, and what it committed.
import { Link, useParams } from "react-router-dom";
import { formatAmount, shortAddress } from "../chain";
import { Chart } from "../chart";
import { Pending, useChain, useChainQuery } from "../connection";
import { MICRO, moduleNames, NANO, type HyperParams } from "../jobspec.js";
import { TxButton } from "../tx";
import { EvaluatePanel } from "../evaluate";
import { useProgress } from "../progress";
import { useWallet } from "../wallet";
import { fromChain, readRuns, stateWords } from "./Factory";

/** A run's settings as people write them. */
export function settings(params: HyperParams): [string, string][] {
  return [
    ["method", params.method.type === "Lora" ? "LoRA" : `QLoRA ${params.method.value.bits}-bit`],
    ["learning rate", String(params.learning_rate / NANO)],
    ["epochs", String(params.epochs)],
    ["batch size", String(params.batch_size)],
    ["gradient accumulation", String(params.grad_accum)],
    ["block length", String(params.cutoff_len)],
    ["warm-up steps", String(params.warmup_steps)],
    ["schedule", params.schedule.toLowerCase()],
    ["weight decay", String(params.weight_decay / NANO)],
    ["gradient clip", String(params.max_grad_norm / NANO)],
    ["stop after steps", params.max_steps === undefined ? "—" : String(params.max_steps)],
    ["rank", String(params.rank)],
    ["alpha", String(params.alpha)],
    ["dropout", String(params.dropout / MICRO)],
    ["rsLoRA", params.rslora ? "yes" : "no"],
    ["modules", moduleNames(params.targets).join(", ")],
    ["seed", String(params.seed)],
    ["held out", String(params.eval_fraction / MICRO)],
  ];
}

export function RunPage() {
  const chain = useChain();
  const { selected } = useWallet();
  const param = useParams().id ?? "";
  const id = /^\d+$/.test(param) ? BigInt(param) : undefined;
  const state = useChainQuery(readRuns, []);
  const job = state.status === "ready" ? state.value.jobs.find((j) => j.id === id) : undefined;
  const live = job !== undefined && job.state.type !== "Committed" && job.state.type !== "Cancelled";
  const progress = useProgress(job?.id, live);

  if (id === undefined) return <p role="alert">“{param}” is not a run number.</p>;
  if (state.status !== "ready") return <Pending state={state} />;
  if (!job)
    return (
      <section>
        <h1>Run {param}</h1>
        <p role="alert">There is no run {param} on this chain.</p>
        <Link to="/factory">All runs</Link>
      </section>
    );
  const model = state.value.models.find((m) => m.id === job.model);
  const last = progress.steps.at(-1);
  const evaluated = progress.steps.filter((s) => s.eval_loss !== undefined);
  const lastEval = evaluated.at(-1);
  const params = fromChain(job.params);
  // What stopping a claimed run pays its worker: the trainer's part of the fee, rounded down.
  const workerPay = (job.fee * BigInt(state.value.split.trainer)) / 1_000_000_000n;
  return (
    <section aria-labelledby="run-title">
      <p>
        <Link to="/factory">← All runs</Link>
      </p>
      <h1 id="run-title">Run {String(job.id)}</h1>
      <dl className="facts">
        <dt>State</dt>
        <dd data-testid="state">
          {job.state.type === "Claimed"
            ? `training: worker ${shortAddress(job.state.value.worker)} holds it until block ${job.state.value.until}`
            : job.state.type === "Open"
              ? "waiting for a worker to claim it; the fee is in escrow"
              : stateWords(job.state)}
        </dd>
        <dt>Base model</dt>
        <dd>{model?.label ?? `#${job.model}`}</dd>
        <dt>Training set</dt>
        <dd>
          {String(job.training.size)} accepted files from{" "}
          {job.training.parts.map((p) => (
            <span key={p.datanet}>
              <Link to={`/datanets/${p.datanet}`}>datanet {p.datanet}</Link> ({String(p.count)}){" "}
            </span>
          ))}
        </dd>
        <dt>Fee</dt>
        <dd>{formatAmount(chain, job.fee)}</dd>
        <dt>Ordered by</dt>
        <dd title={job.creator}>
          {shortAddress(job.creator)} at block {job.created}
        </dd>
        {job.result && (
          <>
            <dt>Adapter</dt>
            <dd className="mono" data-testid="adapter">
              sha256 {job.result.adapter}
            </dd>
            <dt>Result</dt>
            <dd data-testid="result">
              {job.result.steps} steps, {String(job.result.tokens)} tokens; final train loss{" "}
              {(job.result.train_loss / MICRO).toFixed(4)}
              {job.result.eval_loss !== undefined && `, eval loss ${(job.result.eval_loss / MICRO).toFixed(4)}`}
            </dd>
          </>
        )}
      </dl>

      <h2>Loss</h2>
      {progress.error ? (
        <p className="hint">Live progress is not available here: {progress.error}.</p>
      ) : progress.steps.length === 0 ? (
        <p className="empty">{live ? "No step yet: the loss appears here as the worker trains." : "This server holds no progress log for this run."}</p>
      ) : (
        <>
          <p data-testid="progress">
            Step {last!.step} of {last!.total_steps} · loss {last!.loss.toFixed(4)} · learning rate {last!.lr.toExponential(2)} ·{" "}
            {Math.round(last!.tokens_per_s)} tokens/s
          </p>
          {lastEval && (
            <p data-testid="eval-progress">
              Held-out loss {lastEval.eval_loss!.toFixed(4)} at step {lastEval.step} ({evaluated.length} measured so far)
            </p>
          )}
          <Chart
            title={`Training and held-out loss of run ${job.id} by step`}
            xLabel="step"
            yLabel="loss"
            lines={[
              { label: "train loss", color: "#2455c3", points: progress.steps.map((s) => [s.step, s.loss]) },
              ...(evaluated.length > 0
                ? [{ label: "held-out loss", color: "#b4432c", points: evaluated.map((s): [number, number] => [s.step, s.eval_loss!]) }]
                : []),
            ]}
          />
          <Chart
            title={`Learning rate of run ${job.id} by step`}
            xLabel="step"
            yLabel="learning rate"
            lines={[{ label: "learning rate", color: "#17723a", points: progress.steps.map((s) => [s.step, s.lr]) }]}
          />
        </>
      )}
      {params.eval_fraction === 0 && (
        <p className="hint">
          No file was held out, so there is no held-out loss to tell learning from memorising. Refine the run with “Held
          out for eval loss” above 0 to get one.
        </p>
      )}

      <div className="actions">
        {job.state.type === "Committed" && (
          <>
            <Link className="button" to={`/chat?model=job-${job.id}`}>
              Chat with it
            </Link>
            <Link className="button secondary" to={`/provenance/${job.id}`}>
              Verify its provenance
            </Link>
          </>
        )}
        <Link className="button secondary" to={`/factory?from=${job.id}`}>
          Refine: a new run from these settings
        </Link>
        {job.state.type === "Open" && selected?.address === job.creator && (
          <TxButton label="Cancel the run (the fee comes back)" build={() => chain.api.tx.Models.cancel_job({ job: job.id })} />
        )}
        {job.state.type === "Claimed" && selected?.address === job.creator && (
          <TxButton label="Stop the run" build={() => chain.api.tx.Models.cancel_job({ job: job.id })} />
        )}
      </div>
      {job.state.type === "Claimed" && selected?.address === job.creator && (
        <p className="hint" data-testid="stop-terms">
          Stopping pays the worker the trainer's part of the fee for the compute it spent (
          {formatAmount(chain, workerPay)}); the other {formatAmount(chain, job.fee - workerPay)} come back to you. The worker stops within a few seconds; its loss curve stays here.
        </p>
      )}

      {job.state.type === "Committed" && <EvaluatePanel job={job.id} />}

      <h2>Settings</h2>
      <dl className="facts">
        {settings(params).map(([k, v]) => (
          <div key={k} className="fact-row">
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
