// Test a fine-tune on held-out text: its loss beside its base model's on the same words, from the
// inference server's `/v1/evaluate`.
import { useState } from "react";
import { useChain } from "./connection";
import { exampleText, heldOut } from "./heldout.js";
import { evaluate, type Evaluation } from "./openai";
import { trainingSet } from "./pages/Provenance";
import { fetchContent } from "./preview";
import { useServed, waitingWords } from "./served";

/**
 * The text of the files `job`'s worker held out, chosen by the worker's own rule, each fetched
 * and hash-checked; and a sentence saying which they are.
 */
async function heldOutTexts(chain: ReturnType<typeof useChain>, job: bigint): Promise<{ texts: string[]; said: string }> {
  const { api, client } = chain;
  const at = { at: "best" as const };
  const [details, members] = await Promise.all([api.apis.ModelsApi.job(job, at), trainingSet(api, job)]);
  if (!details) throw new Error(`there is no run ${job}`);
  const ids = members.map((m) => m.entry.contribution);
  const chosen = heldOut(ids, details.job.params.seed, details.job.params.eval_fraction);
  if (chosen.length === 0) {
    return { texts: [], said: "This run held no file out: it trained on every file of its set." };
  }
  const records = await api.query.Datanets.Contributions.getValues(
    chosen.map((id) => [id] as [bigint]),
    at,
  );
  const texts: string[] = [];
  const unread: string[] = [];
  for (const [i, record] of records.entries()) {
    if (!record) throw new Error(`contribution ${chosen[i]} is not on chain`);
    const text = exampleText(record.format.type, await fetchContent(client, record.hash));
    if (text) texts.push(text);
    else unread.push(`#${chosen[i]} (${record.format.type.toLowerCase()})`);
  }
  const named = chosen.map((id) => `#${id}`).join(", ");
  return {
    texts,
    said:
      `The files this run held out: ${named}, ${chosen.length} of ${ids.length}.` +
      (unread.length ? ` Studio cannot read the text of ${unread.join(", ")}; the worker extracted it.` : ""),
  };
}

export function EvaluatePanel({ job }: { job: bigint }) {
  const name = `job-${job}`;
  const chain = useChain();
  const served = useServed(name);
  const [text, setText] = useState("");
  const [source, setSource] = useState<{ busy?: boolean; said?: string; error?: string }>({});
  const [state, setState] = useState<{ busy?: boolean; results?: Evaluation[]; error?: string }>({});
  // Results speak of the text they were computed on: new text clears them.
  const edit = (value: string) => {
    setText(value);
    setState({});
  };
  const texts = text.split(/\n\s*\n/).map((t) => t.trim()).filter(Boolean);
  const run = async () => {
    setState({ busy: true });
    try {
      // One after the other: the server runs one evaluation at a time.
      const tuned = await evaluate(name, texts);
      const base = await evaluate("base", texts);
      setState({ results: [tuned, base] });
    } catch (e) {
      setState({ error: e instanceof Error ? e.message : String(e) });
    }
  };
  const [tuned, base] = state.results ?? [];
  return (
    <section className="card" aria-labelledby="evaluate-title">
      <h2 id="evaluate-title">Test it on held-out text</h2>
      <p className="hint">
        Take the files the run held out from training, or paste text it did not train on (a blank line separates texts),
        or load a file. The loss is nats per token the model did not see coming: lower is better.
      </p>
      <button
        type="button"
        className="secondary"
        disabled={source.busy}
        onClick={async () => {
          setSource({ busy: true });
          try {
            const { texts, said } = await heldOutTexts(chain, job);
            if (texts.length) edit(texts.join("\n\n"));
            setSource({ said });
          } catch (e) {
            setSource({ error: `The held-out files could not be read: ${e instanceof Error ? e.message : String(e)}` });
          }
        }}
      >
        {source.busy ? "Fetching the held-out files…" : "Use the run's held-out files"}
      </button>
      {source.said && (
        <p className="hint" data-testid="held-out-files">
          {source.said}
        </p>
      )}
      {source.error && (
        <p className="error" role="alert">
          {source.error}
        </p>
      )}
      <div className="field">
        <label htmlFor="held-out">Held-out text</label>
        <textarea id="held-out" rows={5} value={text} onChange={(e) => edit(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="held-out-file">Or load a text file</label>
        <input
          id="held-out-file"
          type="file"
          accept=".txt,.md,.jsonl,.csv,text/*"
          onChange={async (e) => {
            const file = e.target.files?.[0];
            if (file) edit(await file.text());
          }}
        />
      </div>
      {served.problem && <p className="error">{served.problem}</p>}
      {served.waiting && <p role="status">{waitingWords(name)}</p>}
      {!served.waiting && served.models && !served.models.includes(name) && (
        <p className="error">The inference server does not serve {name}, so it cannot be tested here.</p>
      )}
      {served.paid && <p className="hint">This server is in paid mode: it answers paid requests and does not evaluate.</p>}
      <button
        type="button"
        disabled={texts.length === 0 || state.busy || !served.models?.includes(name) || served.paid}
        onClick={() => void run()}
      >
        {state.busy ? "Evaluating…" : "Evaluate against the base model"}
      </button>
      {state.error && (
        <p className="error" role="alert">
          Not evaluated: {state.error}
        </p>
      )}
      {tuned && base && (
        <>
          <table aria-label="Held-out loss">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Tokens</th>
                <th scope="col">Loss</th>
                <th scope="col">Perplexity</th>
              </tr>
            </thead>
            <tbody>
              {[tuned, base].map((r) => (
                <tr key={r.model}>
                  <td>{r.model === base.model ? `${r.model} (base)` : r.model}</td>
                  <td>{r.tokens}</td>
                  <td>{r.loss.toFixed(4)}</td>
                  <td>{r.perplexity.toFixed(2)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p role="status" data-testid="evaluation">
            {tuned.loss < base.loss
              ? `The fine-tune's loss is ${(100 * (1 - tuned.loss / base.loss)).toFixed(1)}% lower than its base's on this text.`
              : `The fine-tune's loss is ${(100 * (tuned.loss / base.loss - 1)).toFixed(1)}% higher than its base's on this text: it did not learn what this text needs, or it forgot.`}
          </p>
        </>
      )}
    </section>
  );
}
