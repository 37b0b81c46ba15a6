// The provenance explorer: a committed run's base model, datanets, training set, contributors and
// shares, with every proof checked here in the browser from the chain's raw data (the same checks
// as `provenant verify`). A person can also check an adapter file they hold, or whether a file
// of theirs trained the run.
import { sha256 } from "@noble/hashes/sha2.js";
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { formatBytes, shortAddress, text, type Chain } from "../chain";
import { Pending, useChain, useChainQuery, type Loaded } from "../connection";
import { toHex } from "../hex.js";
import { MICRO } from "../jobspec.js";
import { checkProvenance, membership, type Evidence } from "../provenance.js";
import { fetchContent } from "../preview";
import { contentHash } from "../submission.js";
import { readRuns, stateWords } from "./Factory";

const SHA256 = /^(0x)?[0-9a-fA-F]{64}$/;

/** The run `target` names (a number, or an adapter's sha256) with everything its checks need. */
async function gather(chain: Chain, target: string) {
  const { api, client } = chain;
  const at = { at: "best" as const };
  let job: bigint;
  // 64 digits name a hash even when none is a letter: a run number has 20 at most.
  if (SHA256.test(target)) {
    const hex = `0x${target.replace(/^0x/, "").toLowerCase()}`;
    const found = await api.apis.ModelsApi.job_by_adapter(hex, at);
    if (found === undefined) throw new Error(`No committed run has an adapter with sha256 ${hex}.`);
    job = found;
  } else if (/^\d{1,20}$/.test(target)) {
    job = BigInt(target);
  } else {
    throw new Error(`“${target}” is neither a run number nor an adapter's sha256 (64 hex digits).`);
  }
  const details = await api.apis.ModelsApi.job(job, at);
  if (!details) throw new Error(`There is no run ${job} on this chain.`);
  const { outcome } = details;
  if (!outcome) {
    throw new Error(`Run ${job} is ${stateWords(details.job.state)}, not committed: it has no adapter to verify yet.`);
  }
  const members = await trainingSet(api, job);
  const parts = details.job.training.parts;
  const [records, model, datanets, adapter] = await Promise.all([
    api.query.Datanets.Contributions.getValues(
      members.map((m) => [m.entry.contribution] as [bigint]),
      at,
    ),
    api.query.Models.BaseModels.getValue(details.job.model, at),
    api.query.Datanets.Datanets.getValues(
      parts.map((p) => [p.datanet] as [number]),
      at,
    ),
    fetchAdapter(client, details.adapter?.content),
  ]);
  const evidence: Evidence = {
    training: details.job.training,
    outcome,
    shares: details.shares,
    members,
    records: new Map(
      members.flatMap((m, i) => {
        const r = records[i];
        return r ? [[String(m.entry.contribution), { contributor: r.contributor, hash: r.hash, status: r.status.type }]] : [];
      }),
    ),
    adapter,
  };
  return {
    job,
    details,
    outcome,
    model,
    datanetNames: new Map(parts.map((p, i) => [p.datanet, datanets[i] ? text(datanets[i]!.metadata.name) : `#${p.datanet}`])),
    evidence,
    report: checkProvenance(evidence),
  };
}

/** Every member of `job`'s training set, in set order, a page at a time. */
export async function trainingSet(api: Chain["api"], job: bigint): Promise<Evidence["members"]> {
  const members: Evidence["members"] = [];
  for (;;) {
    const page = await api.apis.ModelsApi.training_set(job, BigInt(members.length), 1000, { at: "best" });
    if (page.length === 0) return members;
    members.push(...page);
  }
}

/** The published adapter's bytes from the node's content RPC, hashed here. */
async function fetchAdapter(client: Chain["client"], content: string | undefined): Promise<Evidence["adapter"]> {
  if (!content) return { problem: "the chain holds no published adapter for this run" };
  try {
    const bytes = await fetchContent(client, content);
    return { sha256: toHex(sha256(bytes)), size: bytes.length };
  } catch (e) {
    return { problem: `the node could not serve the adapter: ${e instanceof Error ? e.message : String(e)}` };
  }
}

type Gathered = Awaited<ReturnType<typeof gather>>;

export function ProvenancePage() {
  const target = useParams().target;
  return target ? <Explorer target={target} /> : <Chooser />;
}

/** Pick a committed run, or paste an adapter's hash. */
function Chooser() {
  const navigate = useNavigate();
  const [typed, setTyped] = useState("");
  const runs = useChainQuery(readRuns, []);
  const valid = /^\d{1,20}$/.test(typed.trim()) || SHA256.test(typed.trim());
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (valid) navigate(`/provenance/${typed.trim()}`);
  };
  const committed = runs.status === "ready" ? runs.value.jobs.filter((j) => j.result) : [];
  return (
    <section aria-labelledby="provenance-title">
      <h1 id="provenance-title">Provenance</h1>
      <p className="lede">
        Check where a fine-tune came from: its base model, the datanets and files it was trained on, who contributed them
        and what share of its fees each earns. Every proof is recomputed here in your browser from the chain's data, so you
        need not trust the node or this server.
      </p>
      <form className="card" onSubmit={submit}>
        <div className="field">
          <label htmlFor="target">Adapter sha256 or run number</label>
          <input
            id="target"
            value={typed}
            onChange={(e) => setTyped(e.target.value)}
            placeholder="e.g. 0 or 3f5a…(64 hex digits)"
            aria-invalid={typed.trim() !== "" && !valid}
            aria-describedby="target-help"
          />
          <span id="target-help" className={typed.trim() !== "" && !valid ? "error" : "hint"}>
            {typed.trim() !== "" && !valid
              ? "A run number, or the adapter file's sha256 in 64 hex digits."
              : "The sha256 of adapter_model.safetensors, as `sha256sum` prints it, or a run's number."}
          </span>
        </div>
        <button type="submit" disabled={!valid}>
          Verify
        </button>
      </form>
      <h2>Committed runs</h2>
      <Pending state={runs} />
      {runs.status === "ready" &&
        (committed.length === 0 ? (
          <p className="empty">
            No run is committed yet: a run gets an adapter to verify once a worker trains it. Launch one in{" "}
            <Link to="/factory">ModelFactory</Link>.
          </p>
        ) : (
          <ul>
            {committed.map((j) => (
              <li key={String(j.id)}>
                <Link to={`/provenance/${j.id}`}>Run {String(j.id)}</Link>{" "}
                <span className="mono">adapter {j.result!.adapter.slice(2, 14)}…</span>
              </li>
            ))}
          </ul>
        ))}
    </section>
  );
}

function Explorer({ target }: { target: string }) {
  const chain = useChain();
  const [state, setState] = useState<Loaded<Gathered>>({ status: "loading" });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let cancelled = false;
    setState({ status: "loading" });
    gather(chain, target).then(
      (value) => !cancelled && setState({ status: "ready", value }),
      (e) => !cancelled && setState({ status: "error", error: e instanceof Error ? e.message : String(e) }),
    );
    return () => {
      cancelled = true;
    };
  }, [chain, target, round]);

  return (
    <section aria-labelledby="explorer-title">
      <p>
        <Link to="/provenance">← Verify another</Link>
      </p>
      <h1 id="explorer-title">{state.status === "ready" ? `Provenance of run ${state.value.job}` : "Provenance"}</h1>
      {state.status === "loading" && <p role="status">Reading the run, its training set and its adapter from the chain, and checking every proof…</p>}
      {state.status === "error" && <p role="alert">{state.error}</p>}
      {state.status === "ready" && <Report value={state.value} again={() => setRound((r) => r + 1)} />}
    </section>
  );
}

function Report({ value, again }: { value: Gathered; again: () => void }) {
  const { job, details, outcome, model, datanetNames, evidence, report } = value;
  const failed = report.checks.filter((c) => !c.ok);
  const byContributor = new Map<string, number>();
  for (const row of report.rows) byContributor.set(row.contributor, (byContributor.get(row.contributor) ?? 0) + (row.share ?? 0));
  const attribution =
    outcome.attribution.type === "Tokens"
      ? "by the tokens each file added to training"
      : `by influence on the held-out files (TracIn over ${outcome.attribution.value.checkpoints} checkpoints, ${outcome.attribution.value.probes} probes, a ${outcome.attribution.value.projection_dim}-dimensional sketch)`;
  return (
    <>
      <p className={`big ${report.verified ? "ok" : "error"}`} role="status" data-testid="verdict">
        {report.verified
          ? `Verified: all ${report.checks.length} checks passed, computed in this browser.`
          : `Not verified: ${failed.map((c) => c.what).join(", ")} failed.`}
      </p>
      <dl className="facts">
        <dt>Adapter</dt>
        <dd className="mono">sha256 {outcome.adapter}</dd>
        <dt>Base model</dt>
        <dd>
          {model ? `${text(model.name)} (${model.family.type}, ${model.weights.length} weight file${model.weights.length === 1 ? "" : "s"} registered, licence ${text(model.licence) || "not given"})` : `#${details.job.model}`}
        </dd>
        <dt>Trained by</dt>
        <dd title={details.adapter?.worker}>
          {details.adapter ? `worker ${shortAddress(details.adapter.worker)}` : "—"}: {outcome.steps} steps, {String(outcome.tokens)} tokens,
          final train loss {(outcome.train_loss / MICRO).toFixed(4)}
          {outcome.eval_loss !== undefined && `, held-out loss ${(outcome.eval_loss / MICRO).toFixed(4)}`}
        </dd>
        <dt>Training set</dt>
        <dd>
          {String(details.job.training.size)} files:{" "}
          {details.job.training.parts.map((p) => (
            <span key={p.datanet}>
              <Link to={`/datanets/${p.datanet}`}>{datanetNames.get(p.datanet)}</Link> (the first {String(p.count)} accepted){" "}
            </span>
          ))}
        </dd>
        <dt>Shares</dt>
        <dd>Decided {attribution}.</dd>
      </dl>
      <p>
        <Link to={`/runs/${job}`}>Run {String(job)}'s page</Link> · <Link to={`/chat?model=job-${job}`}>Chat with it</Link> ·{" "}
        <button type="button" className="secondary" onClick={again}>
          Verify again
        </button>
      </p>

      <h2>Checks</h2>
      <ul className="checks" aria-label="Checks">
        {report.checks.map((c) => (
          <li key={c.what} className={c.ok ? "ok" : "error"}>
            <strong>{c.ok ? "✓ ok" : "✗ FAILED"}</strong> {c.what}: <span className="mono">{c.detail}</span>
          </li>
        ))}
      </ul>

      <h2>Contributors</h2>
      {byContributor.size === 0 ? (
        <p className="empty">The training set is empty, so no contributor is credited.</p>
      ) : (
        <ul aria-label="Contributors and their shares">
          {[...byContributor.entries()]
            .sort((a, b) => b[1] - a[1])
            .map(([who, share]) => (
              <li key={who} title={who}>
                <span className="mono">{who ? shortAddress(who) : "unknown"}</span>: {(100 * share).toFixed(2)}% of the contributors' part
              </li>
            ))}
        </ul>
      )}
      <div className="table-wrap">
        <table aria-label="Training set">
          <thead>
            <tr>
              <th scope="col">Contribution</th>
              <th scope="col">Datanet</th>
              <th scope="col">Position</th>
              <th scope="col">Contributor</th>
              <th scope="col">Verdict</th>
              <th scope="col">Share</th>
              <th scope="col">Proof</th>
            </tr>
          </thead>
          <tbody>
            {report.rows.map((r) => (
              <tr key={String(r.contribution)}>
                <td>#{String(r.contribution)}</td>
                <td>{datanetNames.get(r.datanet)}</td>
                <td>{String(r.index)}</td>
                <td className="mono" title={r.contributor}>
                  {r.contributor ? shortAddress(r.contributor) : "—"}
                </td>
                <td className={`status-${r.verdict}`}>{r.verdict}</td>
                <td>{r.share === undefined ? "—" : `${(100 * r.share).toFixed(2)}%`}</td>
                <td className={r.proved ? "ok" : "error"}>{r.proved ? "✓ proved" : "✗ fails"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>Check files you hold</h2>
      <FileCheck
        label="Your copy of the adapter (adapter_model.safetensors)"
        judge={(bytes) => {
          const sha = toHex(sha256(bytes));
          return sha === outcome.adapter
            ? { tone: "ok", words: `It is the committed adapter (sha256 ${sha.slice(2, 14)}…).` }
            : { tone: "error", words: `It is not the committed adapter: its sha256 is ${sha.slice(2)}, the run committed ${outcome.adapter.slice(2)}.` };
        }}
      />
      <FileCheck
        label="A file: was it in the training set?"
        judge={(bytes) => {
          const words = membership(evidence.members, contentHash(bytes));
          return { tone: words.startsWith("Yes") ? "ok" : "hint", words };
        }}
      />
      <p className="hint">
        Files are read and hashed in this browser; nothing is uploaded. The same checks run from a terminal with{" "}
        <span className="mono">provenant verify {String(job)}</span>.
      </p>
    </>
  );
}

type Judgement = { tone: "ok" | "error" | "hint"; words: string };

function FileCheck({ label, judge }: { label: string; judge: (bytes: Uint8Array) => Judgement }) {
  const [result, setResult] = useState<Judgement & { name: string }>();
  const id = `file-${label.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="file"
        onChange={async (e) => {
          const file = e.target.files?.[0];
          if (!file) return setResult(undefined);
          setResult({ ...judge(new Uint8Array(await file.arrayBuffer())), name: `${file.name} (${formatBytes(file.size)})` });
        }}
      />
      {result && (
        <p className={result.tone} role="status">
          {result.name}: {result.words}
        </p>
      )}
    </div>
  );
}
