// Chat with a fine-tune through the inference server, side by side with its base model, each
// answer with the contributions it came from.
import { useRef, useState, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { formatAmount } from "../chain";
import { useChain } from "../connection";
import { chat, type Answer, type Attribution } from "../openai";
import { PaymentPanel, usePayer, usePayment } from "../pay";
import { useServed, waitingWords } from "../served";

interface Turn {
  question: string;
  text: string;
  answer?: Answer;
  error?: string;
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

/** The answer with each span found in the training set marked, and its sources in the title. */
function Highlighted({ text, attribution }: { text: string; attribution: Attribution | null }) {
  const spans = attribution?.spans ?? [];
  const parts: ReactNode[] = [];
  let at = 0;
  for (const [i, span] of spans.entries()) {
    const start = text.indexOf(span.text, at);
    if (!span.text || start < 0) continue;
    parts.push(text.slice(at, start));
    parts.push(
      <mark key={i} title={`found in contribution ${span.contributions.map((c) => `#${c}`).join(", ")}`}>
        {span.text}
      </mark>,
    );
    at = start + span.text.length;
  }
  parts.push(text.slice(at));
  return <p className="answer">{parts}</p>;
}

function Sources({ model, attribution }: { model: string; attribution: Attribution | null }) {
  if (!attribution) {
    return (
      <p className="hint">
        {model.startsWith("job-") ? "No attribution came with this answer." : "The base model: no fine-tune data to credit."}
      </p>
    );
  }
  return (
    <div className="sources">
      <p className="hint">
        From job {attribution.job} (adapter <span className="mono">{attribution.adapter.slice(0, 12)}…</span>), trained
        on contributions credited by {attribution.method?.method ?? "their committed shares"}:{" "}
        {attribution.shares.map((s) => `#${s.contribution} ${percent(s.share)}`).join(", ")}.{" "}
        <Link to={`/provenance/${attribution.job}`}>Verify where it came from</Link>
      </p>
      {attribution.spans === null ? (
        <p className="hint">This server has no span index for the job, so the answer's sources are not shown.</p>
      ) : attribution.spans.length === 0 ? (
        <p className="hint">No part of this answer repeats its training data verbatim.</p>
      ) : (
        <ul aria-label="Sources of this answer">
          {attribution.spans.map((span, i) => (
            <li key={i}>
              “{span.text}” from {span.contributions.map((c) => `#${c}`).join(", ")}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Paid({ payment }: { payment: NonNullable<Answer["payment"]> }) {
  const chain = useChain();
  return (
    <p className="hint" data-testid="paid">
      Paid {formatAmount(chain, BigInt(payment.charged))} for {payment.tokens} tokens at{" "}
      {formatAmount(chain, BigInt(payment.price))} each, on channel {payment.channel}.
    </p>
  );
}

function Column({ title, model, turns }: { title: string; model: string; turns: Turn[] }) {
  return (
    <section className="chat-column" aria-label={`Answers from ${title}`}>
      <h2>{title}</h2>
      {turns.length === 0 && <p className="empty">Ask something below.</p>}
      {turns.map((turn, i) => (
        <article key={i} className="turn">
          <p className="question">{turn.question}</p>
          {turn.error ? (
            <p role="alert" className="error">
              {turn.error}
            </p>
          ) : turn.answer ? (
            <>
              <Highlighted text={turn.answer.text} attribution={turn.answer.attribution} />
              <Sources model={model} attribution={turn.answer.attribution} />
              {turn.answer.payment && <Paid payment={turn.answer.payment} />}
            </>
          ) : (
            <p className="answer" aria-busy="true">
              {turn.text || "…"}
            </p>
          )}
        </article>
      ))}
    </section>
  );
}

export function ChatPage() {
  const [params, setParams] = useSearchParams();
  const [question, setQuestion] = useState("");
  const [maxTokens, setMaxTokens] = useState(64);
  const [temperature, setTemperature] = useState(0);
  const [turns, setTurns] = useState<Record<string, Turn[]>>({});
  const [busy, setBusy] = useState(false);
  const abort = useRef<AbortController | undefined>(undefined);

  const wanted = params.get("model");
  const { models, paid, operator, problem, waiting } = useServed(wanted);
  const payment = usePayment(paid ? operator : undefined);
  const payer = usePayer(payment.status === "ready" && payment.value?.final ? payment.value.channel : undefined);

  if (problem) return <p role="alert">{problem}</p>;
  if (!models) return <p role="status">Asking the inference server for its models…</p>;
  if (waiting) return <p role="status">{waitingWords(wanted!)}</p>;
  const base = models[0];
  const model = wanted && models.includes(wanted) ? wanted : models.at(-1)!;
  const compare = model !== base && params.get("compare") !== "0";
  const shown = compare ? [model, base] : [model];

  const ask = async () => {
    const text = question.trim();
    if (!text) return;
    setQuestion("");
    setBusy(true);
    abort.current = new AbortController();
    await Promise.all(
      shown.map(async (name) => {
        const history = (turns[name] ?? []).filter((t) => t.answer);
        const update = (change: Partial<Turn>) =>
          setTurns((all) => {
            const list = [...(all[name] ?? [])];
            list[list.length - 1] = { ...list[list.length - 1], ...change };
            return { ...all, [name]: list };
          });
        setTurns((all) => ({ ...all, [name]: [...(all[name] ?? []), { question: text, text: "" }] }));
        try {
          const answer = await chat(
            {
              model: name,
              messages: [
                ...history.flatMap((t) => [
                  { role: "user" as const, content: t.question },
                  { role: "assistant" as const, content: t.answer!.text },
                ]),
                { role: "user", content: text },
              ],
              max_tokens: maxTokens,
              temperature,
              seed: 0,
            },
            (soFar) => update({ text: soFar }),
            abort.current!.signal,
            payer,
          );
          update({ answer });
        } catch (e) {
          const stopped = e instanceof DOMException && e.name === "AbortError";
          update({ error: stopped ? "Stopped." : e instanceof Error ? e.message : String(e) });
        }
      }),
    );
    setBusy(false);
  };

  return (
    <section aria-labelledby="chat-title">
      <h1 id="chat-title">Chat</h1>
      <p className="lede">
        Ask a fine-tune committed on chain, beside its base model. Parts of an answer found word for word in the training
        data are marked, with the contributions they came from.
      </p>
      <div className="chat-controls">
        <div className="field">
          <label htmlFor="chat-model">Model</label>
          <select
            id="chat-model"
            value={model}
            onChange={(e) => setParams((p) => (p.set("model", e.target.value), p), { replace: true })}
          >
            {models.map((m) => (
              <option key={m} value={m}>
                {m === base ? `${m} (base)` : m}
              </option>
            ))}
          </select>
        </div>
        {model !== base && (
          <label className="inline">
            <input
              type="checkbox"
              checked={compare}
              onChange={(e) => setParams((p) => (p.set("compare", e.target.checked ? "1" : "0"), p), { replace: true })}
            />
            Compare with the base model
          </label>
        )}
        <div className="field">
          <label htmlFor="chat-max">Longest answer (tokens)</label>
          <input
            id="chat-max"
            type="number"
            min={1}
            max={1024}
            value={maxTokens}
            onChange={(e) => setMaxTokens(Math.max(1, Math.min(1024, Number(e.target.value) || 1)))}
          />
        </div>
        <div className="field">
          <label htmlFor="chat-temperature">Temperature: {temperature.toFixed(1)}</label>
          <input
            id="chat-temperature"
            type="range"
            min={0}
            max={2}
            step={0.1}
            value={temperature}
            onChange={(e) => setTemperature(Number(e.target.value))}
          />
        </div>
      </div>
      {wanted && !models.includes(wanted) && (
        <p role="alert">This server does not serve {wanted}; choose a model it serves.</p>
      )}
      {models.length === 1 && (
        <p className="hint">No fine-tune is committed for this base model yet, so only the base model answers.</p>
      )}
      <div className={compare ? "chat-columns two" : "chat-columns"}>
        {shown.map((name) => (
          <Column key={name} title={name === base ? `${name} (base)` : name} model={name} turns={turns[name] ?? []} />
        ))}
      </div>
      {paid && operator && <PaymentPanel operator={operator} />}
      {paid && !payer ? (
        <p className="hint">Open a payment channel above to ask this server.</p>
      ) : (
        <form
          className="chat-input"
          onSubmit={(e) => {
            e.preventDefault();
            void ask();
          }}
        >
          <label htmlFor="chat-question" className="visually-hidden">
            Your question
          </label>
          <textarea
            id="chat-question"
            rows={2}
            placeholder="Ask something…"
            value={question}
            onChange={(e) => setQuestion(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                void ask();
              }
            }}
          />
          <button type="submit" disabled={busy || !question.trim()}>
            {busy ? "Answering…" : "Ask"}
          </button>
          {busy && (
            <button type="button" className="secondary" onClick={() => abort.current?.abort()}>
              Stop
            </button>
          )}
        </form>
      )}
    </section>
  );
}
