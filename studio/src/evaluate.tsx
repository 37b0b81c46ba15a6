// Test a fine-tune on held-out text: its loss beside its base model's on the same words, from the
// inference server's `/v1/evaluate`.
import { useState } from "react";
import { evaluate, type Evaluation } from "./openai";
import { useServed, waitingWords } from "./served";

export function EvaluatePanel({ job }: { job: bigint }) {
  const name = `job-${job}`;
  const served = useServed(name);
  const [text, setText] = useState("");
  const [state, setState] = useState<{ busy?: boolean; results?: Evaluation[]; error?: string }>({});
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
        Paste text the run did not train on (a blank line separates texts), or load a file. The loss is nats per token the
        model did not see coming: lower is better.
      </p>
      <div className="field">
        <label htmlFor="held-out">Held-out text</label>
        <textarea id="held-out" rows={5} value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="held-out-file">Or load a text file</label>
        <input
          id="held-out-file"
          type="file"
          accept=".txt,.md,.jsonl,.csv,text/*"
          onChange={async (e) => {
            const file = e.target.files?.[0];
            if (file) setText(await file.text());
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
