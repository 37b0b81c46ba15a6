// ModelFactory: every run (a fine-tuning job on chain) and the form that launches a new one,
// or refines an old one's settings.
import { useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { formatAmount, formatBytes, parseAmount, shortAddress, text, type Chain } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { check, defaults, FAMILIES, MICRO, moduleBits, moduleNames, NANO, toUnits, type Family, type HyperParams } from "../jobspec.js";
import { Preview } from "../preview";
import { medianRate, useProgress } from "../progress";
import { TxButton } from "../tx";

/** The trainer's measured LoRA rate on SmolLM2-135M on this project's 2-core machine (README). */
const MEASURED_TOKENS_PER_S = 432;
const BYTES_PER_TOKEN = 4;

/** The runs and the models they fine-tune: what a run's page and the comparison read. */
export async function readRuns(chain: Chain) {
  const { api } = chain;
  const at = { at: "best" as const };
  const [models, jobs, results, split] = await Promise.all([
    api.query.Models.BaseModels.getEntries(at),
    api.query.Models.Jobs.getEntries(at),
    api.query.Models.Results.getEntries(at),
    api.query.Models.CurrentFeeSplit.getValue(at),
  ]);
  return {
    /** The published split of a fee, in parts per billion. */
    split,
    models: models
      .map(({ keyArgs: [id], value }) => ({ id, ...value, label: text(value.name) }))
      .sort((a, b) => a.id - b.id),
    jobs: jobs
      .map(({ keyArgs: [id], value }) => ({
        id,
        ...value,
        result: results.find((r) => r.keyArgs[0] === id)?.value,
      }))
      .sort((a, b) => Number(b.id - a.id)),
  };
}

/** The runs, plus each datanet's accepted files for the launch form. */
async function readFactory(chain: Chain) {
  const { api } = chain;
  const at = { at: "best" as const };
  const [runs, datanets, contributions] = await Promise.all([
    readRuns(chain),
    api.query.Datanets.Datanets.getEntries(at),
    api.query.Datanets.Contributions.getEntries(at),
  ]);
  const accepted = contributions.filter((c) => c.value.status.type === "Accepted");
  return {
    ...runs,
    datanets: datanets
      .map(({ keyArgs: [id], value }) => {
        const files = accepted.filter((c) => c.value.datanet === id);
        return {
          id,
          name: text(value.metadata.name),
          kind: value.kind.type,
          accepted: files.length,
          bytes: files.reduce((n, c) => n + c.value.size, 0),
          samples: files.slice(0, 3).map((c) => ({ hash: c.value.hash, format: c.value.format.type.toLowerCase() })),
        };
      })
      .sort((a, b) => a.id - b.id),
  };
}

type ChainParams = Awaited<ReturnType<typeof readRuns>>["jobs"][number]["params"];

/** A job's parameters as the chain holds them, in the rules' shape. */
export function fromChain(params: ChainParams): HyperParams {
  return {
    ...params,
    method: params.method.type === "Lora" ? { type: "Lora" } : { type: "Qlora", value: { bits: params.method.value.bits } },
    schedule: params.schedule.type,
  };
}

/** A job's state in a few words. */
export function stateWords(state: { type: string; value?: unknown }): string {
  switch (state.type) {
    case "Open":
      return "waiting for a worker";
    case "Claimed":
      return `training (worker ${shortAddress((state.value as { worker: string }).worker)})`;
    case "Committed":
      return "done";
    case "Cancelled":
      return "cancelled";
    default:
      return state.type;
  }
}

/** The form's fields as typed: numbers as text, so a half-typed value is not lost. */
interface Draft {
  method: "Lora" | "Qlora4" | "Qlora8";
  learningRate: string;
  epochs: string;
  batchSize: string;
  gradAccum: string;
  cutoffLen: string;
  warmupSteps: string;
  schedule: "Cosine" | "Linear" | "Constant";
  weightDecay: string;
  maxGradNorm: string;
  maxSteps: string;
  rank: string;
  alpha: string;
  dropout: string;
  rslora: boolean;
  targets: string[];
  seed: string;
  evalFraction: string;
}

function draftOf(params: HyperParams): Draft {
  return {
    method: params.method.type === "Lora" ? "Lora" : params.method.value.bits === 8 ? "Qlora8" : "Qlora4",
    learningRate: String(params.learning_rate / NANO),
    epochs: String(params.epochs),
    batchSize: String(params.batch_size),
    gradAccum: String(params.grad_accum),
    cutoffLen: String(params.cutoff_len),
    warmupSteps: String(params.warmup_steps),
    schedule: params.schedule,
    weightDecay: String(params.weight_decay / NANO),
    maxGradNorm: String(params.max_grad_norm / NANO),
    maxSteps: params.max_steps === undefined ? "" : String(params.max_steps),
    rank: String(params.rank),
    alpha: String(params.alpha),
    dropout: String(params.dropout / MICRO),
    rslora: params.rslora,
    targets: moduleNames(params.targets),
    seed: String(params.seed),
    evalFraction: String(params.eval_fraction / MICRO),
  };
}

/** The draft in the chain's units, or the first field that cannot be read. */
function paramsOf(draft: Draft): { params?: HyperParams; field?: string; message?: string } {
  const whole = (field: string, value: string, max: number) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n > max) throw { field, message: `a whole number from 0 to ${max}` };
    return n;
  };
  const rate = (field: string, value: string, unit: number) => {
    const n = toUnits(Number(value), unit);
    if (!value.trim() || n === undefined) throw { field, message: "a number of 0 or more" };
    return n;
  };
  try {
    return {
      params: {
        method: draft.method === "Lora" ? { type: "Lora" } : { type: "Qlora", value: { bits: draft.method === "Qlora8" ? 8 : 4 } },
        learning_rate: rate("learning_rate", draft.learningRate, NANO),
        epochs: whole("epochs", draft.epochs, 65535),
        batch_size: whole("batch_size", draft.batchSize, 65535),
        grad_accum: whole("grad_accum", draft.gradAccum, 65535),
        cutoff_len: whole("cutoff_len", draft.cutoffLen, 4294967295),
        warmup_steps: whole("warmup_steps", draft.warmupSteps, 4294967295),
        schedule: draft.schedule,
        weight_decay: rate("weight_decay", draft.weightDecay, NANO),
        max_grad_norm: rate("max_grad_norm", draft.maxGradNorm, NANO),
        max_steps: draft.maxSteps.trim() ? whole("max_steps", draft.maxSteps, 4294967295) : undefined,
        rank: whole("rank", draft.rank, 65535),
        alpha: whole("alpha", draft.alpha, 65535),
        dropout: rate("dropout", draft.dropout, MICRO),
        rslora: draft.rslora,
        targets: moduleBits(draft.targets),
        seed: BigInt(whole("seed", draft.seed, Number.MAX_SAFE_INTEGER)),
        eval_fraction: rate("eval_fraction", draft.evalFraction, MICRO),
      },
    };
  } catch (e) {
    return e as { field: string; message: string };
  }
}

const PRESETS: Record<string, Partial<Draft>> = {
  "Quick look": { epochs: "1", rank: "4", alpha: "8", cutoffLen: "128", batchSize: "4" },
  Balanced: { epochs: "3", rank: "8", alpha: "16", cutoffLen: "256", batchSize: "4" },
  Thorough: { epochs: "5", rank: "16", alpha: "32", cutoffLen: "512", batchSize: "4" },
};

const FIELD_LABELS: [keyof Draft, string, string][] = [
  ["learningRate", "learning_rate", "Learning rate"],
  ["epochs", "epochs", "Epochs"],
  ["batchSize", "batch_size", "Batch size (blocks)"],
  ["gradAccum", "grad_accum", "Gradient accumulation"],
  ["cutoffLen", "cutoff_len", "Block length (tokens)"],
  ["warmupSteps", "warmup_steps", "Warm-up steps"],
  ["weightDecay", "weight_decay", "Weight decay"],
  ["maxGradNorm", "max_grad_norm", "Gradient clip (norm)"],
  ["maxSteps", "max_steps", "Stop after steps (optional)"],
  ["rank", "rank", "Rank r"],
  ["alpha", "alpha", "Alpha α"],
  ["dropout", "dropout", "Dropout"],
  ["seed", "seed", "Seed"],
  ["evalFraction", "eval_fraction", "Held out for eval loss"],
];

export function FactoryPage() {
  const state = useChainQuery(readFactory, []);
  if (state.status !== "ready") return <Pending state={state} />;
  return <Factory data={state.value} />;
}

function Factory({ data }: { data: Awaited<ReturnType<typeof readFactory>> }) {
  const chain = useChain();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const from = data.jobs.find((j) => String(j.id) === params.get("from"));
  const usable = data.models.filter((m) => !m.retired);
  const [modelId, setModelId] = useState<number | undefined>(from?.model ?? usable[0]?.id);
  const model = data.models.find((m) => m.id === modelId);
  const family = (model?.family.type ?? "Llama") as Family;
  const [chosen, setChosen] = useState<number[]>(from?.training.parts.map((p) => p.datanet) ?? []);
  const original = useMemo(() => (from ? draftOf(fromChain(from.params)) : draftOf(defaults(family))), [from, family]);
  const [draft, setDraft] = useState<Draft>(original);
  const [fee, setFee] = useState(from ? String(Number(from.fee) / 10 ** chain.decimals) : "100");
  const [compare, setCompare] = useState<bigint[]>([]);
  // The rate this chain's worker trained this model at in its newest run, when there is one.
  const measured = data.jobs.find((j) => j.model === modelId && j.state.type !== "Open");
  const measuredRate = medianRate(useProgress(measured?.id, false).steps);

  const set = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));
  const parsed = paramsOf(draft);
  const verdict = parsed.params && model ? check(parsed.params, { family, maxPositions: model.max_positions }) : undefined;
  const problem =
    parsed.field !== undefined
      ? { field: parsed.field, message: parsed.message! }
      : verdict && !verdict.ok
        ? { field: verdict.field, message: verdict.message }
        : undefined;
  let feePlancks = 0n;
  let feeError: string | undefined;
  try {
    feePlancks = parseAmount(chain, fee);
    if (feePlancks === 0n) feeError = "The worker is paid from this fee: more than 0.";
  } catch (e) {
    feeError = (e as Error).message;
  }
  const selected = data.datanets.filter((d) => chosen.includes(d.id));
  const bytes = selected.reduce((n, d) => n + d.bytes, 0);
  const dataError =
    selected.length === 0
      ? "Choose at least one datanet."
      : selected.some((d) => d.accepted === 0)
        ? "A chosen datanet has no accepted file yet."
        : undefined;
  const trained = parsed.params ? (bytes / BYTES_PER_TOKEN) * (1 - parsed.params.eval_fraction / MICRO) * parsed.params.epochs : 0;
  const minutes = trained / (measuredRate ?? MEASURED_TOKENS_PER_S) / 60;
  const changed = from ? (Object.keys(draft) as (keyof Draft)[]).filter((k) => String(draft[k]) !== String(original[k])) : [];
  const ready = model && !problem && !feeError && !dataError && parsed.params;

  return (
    <section aria-labelledby="factory-title">
      <h1 id="factory-title">ModelFactory</h1>
      <p className="lede">
        Fine-tune a registered base model on the accepted files of datanets. Each run is a job on chain: its fee is held in
        escrow until a worker trains it and commits the adapter, the training set's root and who taught it what.
      </p>

      <h2 id="runs-title">Runs</h2>
      {data.jobs.length === 0 ? (
        <p className="empty">No run yet. Launch the first one below.</p>
      ) : (
        <>
          <div className="table-wrap">
            <table aria-labelledby="runs-title">
              <thead>
                <tr>
                  <th scope="col">Compare</th>
                  <th scope="col">Run</th>
                  <th scope="col">Base model</th>
                  <th scope="col">Datanets</th>
                  <th scope="col">State</th>
                  <th scope="col">Train loss</th>
                  <th scope="col">Eval loss</th>
                </tr>
              </thead>
              <tbody>
                {data.jobs.map((job) => (
                  <tr key={String(job.id)}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Compare run ${job.id}`}
                        checked={compare.includes(job.id)}
                        onChange={(e) =>
                          setCompare((c) => (e.target.checked ? [...c, job.id].slice(-2) : c.filter((x) => x !== job.id)))
                        }
                      />
                    </td>
                    <td>
                      <Link to={`/runs/${job.id}`}>Run {String(job.id)}</Link>
                    </td>
                    <td>{data.models.find((m) => m.id === job.model)?.label ?? `#${job.model}`}</td>
                    <td>{job.training.parts.map((p) => `#${p.datanet}`).join(", ")}</td>
                    <td>{stateWords(job.state)}</td>
                    <td>{job.result ? (job.result.train_loss / MICRO).toFixed(4) : "—"}</td>
                    <td>{job.result?.eval_loss !== undefined ? (job.result.eval_loss / MICRO).toFixed(4) : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <button
            type="button"
            className="secondary"
            disabled={compare.length !== 2}
            onClick={() => navigate(`/compare?runs=${compare.join(",")}`)}
          >
            Compare the two chosen runs
          </button>
        </>
      )}

      <form className="card wide" aria-labelledby="new-run-title" onSubmit={(e) => e.preventDefault()}>
        <h2 id="new-run-title">{from ? `Refine run ${from.id}` : "New run"}</h2>
        {from && (
          <p className="hint" data-testid="changes">
            {changed.length === 0
              ? `The settings of run ${from.id}; change some, then launch.`
              : `Changed from run ${from.id}: ${changed.map((k) => `${FIELD_LABELS.find((f) => f[0] === k)?.[2] ?? k} ${original[k]} → ${draft[k]}`).join("; ")}`}
          </p>
        )}
        {usable.length === 0 ? (
          <p className="empty">No base model is registered yet (`provenant model register`).</p>
        ) : (
          <div className="field">
            <label htmlFor="run-model">Base model</label>
            <select
              id="run-model"
              value={modelId ?? ""}
              onChange={(e) => {
                const next = data.models.find((m) => m.id === Number(e.target.value));
                setModelId(next?.id);
                if (next) set({ targets: FAMILIES[next.family.type as Family].defaults });
              }}
            >
              {usable.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.label} ({FAMILIES[m.family.type as Family].name}, {m.max_positions} positions)
                </option>
              ))}
            </select>
          </div>
        )}
        <fieldset className="field">
          <legend>Training data: the accepted files of</legend>
          {data.datanets.length === 0 && <p className="empty">No datanet yet.</p>}
          {data.datanets.map((d) => (
            <label key={d.id} className="inline">
              <input
                type="checkbox"
                checked={chosen.includes(d.id)}
                onChange={(e) => setChosen((c) => (e.target.checked ? [...c, d.id] : c.filter((x) => x !== d.id)))}
              />
              #{d.id} {d.name} ({d.accepted} accepted, {formatBytes(d.bytes)})
            </label>
          ))}
          {dataError && <small className="error">{dataError}</small>}
        </fieldset>
        {selected.length > 0 && (
          <details>
            <summary>Preview of the training data</summary>
            {selected.flatMap((d) => d.samples).map((s) => (
              <Preview key={s.hash} hash={s.hash} format={s.format} />
            ))}
          </details>
        )}
        <div className="presets" role="group" aria-label="Presets">
          {Object.entries(PRESETS).map(([name, preset]) => (
            <button key={name} type="button" className="secondary" onClick={() => set(preset)}>
              {name}
            </button>
          ))}
        </div>
        <div className="field">
          <label htmlFor="run-method">Method</label>
          <select id="run-method" value={draft.method} onChange={(e) => set({ method: e.target.value as Draft["method"] })}>
            <option value="Lora">LoRA (base in full precision)</option>
            <option value="Qlora4">QLoRA, 4-bit base (NF4)</option>
            <option value="Qlora8">QLoRA, 8-bit base</option>
          </select>
        </div>
        <div className="grid-fields">
          {FIELD_LABELS.map(([key, field, label]) => (
            <div className="field" key={key}>
              <label htmlFor={`run-${key}`}>{label}</label>
              <input
                id={`run-${key}`}
                inputMode="decimal"
                value={draft[key] as string}
                onChange={(e) => set({ [key]: e.target.value } as Partial<Draft>)}
                aria-invalid={problem?.field === field ? true : undefined}
                aria-describedby={problem?.field === field ? `run-${key}-error` : undefined}
              />
              {key === "rank" && (
                <input
                  type="range"
                  min={1}
                  max={64}
                  aria-label="Rank r, slider"
                  value={Math.min(64, Number(draft.rank) || 1)}
                  onChange={(e) => set({ rank: e.target.value, alpha: String(Number(e.target.value) * 2) })}
                />
              )}
              {problem?.field === field && (
                <small id={`run-${key}-error`} className="error">
                  {field}: {problem.message}
                </small>
              )}
            </div>
          ))}
          <div className="field">
            <label htmlFor="run-schedule">Schedule</label>
            <select id="run-schedule" value={draft.schedule} onChange={(e) => set({ schedule: e.target.value as Draft["schedule"] })}>
              <option value="Cosine">cosine</option>
              <option value="Linear">linear</option>
              <option value="Constant">constant</option>
            </select>
          </div>
        </div>
        <label className="inline">
          <input type="checkbox" checked={draft.rslora} onChange={(e) => set({ rslora: e.target.checked })} />
          rsLoRA (scale by α/√r)
        </label>
        <fieldset className="field">
          <legend>Modules to adapt</legend>
          {FAMILIES[family].modules.map((m) => (
            <label key={m} className="inline">
              <input
                type="checkbox"
                checked={draft.targets.includes(m)}
                onChange={(e) => set({ targets: e.target.checked ? [...draft.targets, m] : draft.targets.filter((t) => t !== m) })}
              />
              {m}
            </label>
          ))}
          {(problem?.field === "target_modules" || problem?.field === "bits") && (
            <small className="error">
              {problem.field}: {problem.message}
            </small>
          )}
        </fieldset>
        <div className="field">
          <label htmlFor="run-fee">Fee held in escrow ({chain.symbol})</label>
          <input id="run-fee" value={fee} onChange={(e) => setFee(e.target.value)} aria-invalid={feeError ? true : undefined} />
          {feeError && <small className="error">{feeError}</small>}
        </div>
        {parsed.params && bytes > 0 && (
          <p className="hint" data-testid="estimate">
            About {Math.round(trained).toLocaleString("en-US")} tokens to train: roughly{" "}
            {minutes < 1 ? "under a minute" : `${Math.ceil(minutes)} min`}{" "}
            {measuredRate !== undefined && measured
              ? `at the ${Math.round(measuredRate)} tokens/s this chain's worker trained this model at in run ${measured.id}.`
              : `at the ${MEASURED_TOKENS_PER_S} tokens/s the trainer measured for SmolLM2-135M on 2 CPU cores (larger models take longer; once a worker has trained this model here, its own rate is used).`}
          </p>
        )}
        <TxButton
          label={from ? "Launch the refined run" : "Launch run"}
          disabled={!ready}
          build={() =>
            ready
              ? chain.api.tx.Models.create_job({
                  model: model!.id,
                  datanets: chosen,
                  params: {
                    ...parsed.params!,
                    method:
                      parsed.params!.method.type === "Lora"
                        ? { type: "Lora", value: undefined }
                        : { type: "Qlora", value: { bits: parsed.params!.method.value.bits } },
                    schedule: { type: parsed.params!.schedule, value: undefined },
                  },
                  fee: feePlancks,
                })
              : "Fix the fields marked above first."
          }
          onSuccess={(events) => {
            const created = events.find((e) => e.type === "Models" && e.value.type === "JobCreated");
            const job = (created?.value.value as { job?: bigint } | undefined)?.job;
            if (job !== undefined) navigate(`/runs/${job}`);
          }}
        />
        <p className="hint">
          Fee: {feeError ? "—" : formatAmount(chain, feePlancks)}, paid to the worker, the datanets' pools and the contributors
          by the published split when the run is committed; yours again if you cancel it before a worker claims it, less the
          worker's part if you stop it while it trains.
        </p>
      </form>
    </section>
  );
}
