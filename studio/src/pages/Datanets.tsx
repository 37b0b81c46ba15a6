// The datanets: every one with its kind, rules and caps, and a form to create one.
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { bytes, formatAmount, formatBytes, shortAddress, text } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { checkDraft, formatNames, formatsOfKind, type DatanetDraft, type Kind, type Limits } from "../rules";
import { TxButton } from "../tx";

export function DatanetsPage() {
  const state = useChainQuery(async ({ api }) => {
    const entries = await api.query.Datanets.Datanets.getEntries({ at: "best" });
    return entries.map(({ keyArgs: [id], value }) => ({ id, ...value })).sort((a, b) => a.id - b.id);
  }, []);

  return (
    <section aria-labelledby="datanets-title">
      <h1 id="datanets-title">Datanets</h1>
      <p className="lede">
        Each datanet collects one kind of data under published rules. Contributors earn by the share of their files
        that validators accept.
      </p>
      <Pending state={state} />
      {state.status === "ready" &&
        (state.value.length === 0 ? (
          <p className="empty">No datanet yet. Create the first one below.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Every datanet on chain</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Formats</th>
                  <th scope="col">Largest file</th>
                  <th scope="col">Per day</th>
                  <th scope="col">Status</th>
                  <th scope="col">Owner</th>
                </tr>
              </thead>
              <tbody>
                {state.value.map((d) => (
                  <tr key={d.id}>
                    <td>{d.id}</td>
                    <td>
                      <Link to={`/datanets/${d.id}`}>{text(d.metadata.name)}</Link>
                    </td>
                    <td>{d.kind.type}</td>
                    <td>{formatNames(d.formats).join(", ")}</td>
                    <td>{formatBytes(d.caps.max_file_bytes)}</td>
                    <td>{formatBytes(d.caps.daily_bytes)}</td>
                    <td>{d.status.type}</td>
                    <td title={d.owner}>{shortAddress(d.owner)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      <CreateDatanet />
    </section>
  );
}

const EMPTY: DatanetDraft = {
  name: "",
  summary: "",
  tags: "",
  kind: "Text",
  formats: formatsOfKind("Text"),
  maxFileMib: "5",
  dailyMib: "10",
};

function CreateDatanet() {
  const chain = useChain();
  const navigate = useNavigate();
  const [draft, setDraft] = useState(EMPTY);
  const [touched, setTouched] = useState<Record<string, boolean>>({});
  const limits = useChainQuery(async ({ api }) => {
    const c = api.constants.Datanets;
    const [maxNameLen, maxSummaryLen, maxTagLen, maxTags, maxFileBytes, base, perByte] = await Promise.all([
      c.MaxNameLen(),
      c.MaxSummaryLen(),
      c.MaxTagLen(),
      c.MaxTags(),
      c.MaxFileBytes(),
      c.DepositBase(),
      c.DepositPerByte(),
    ]);
    return { limits: { maxNameLen, maxSummaryLen, maxTagLen, maxTags, maxFileBytes } as Limits, base, perByte };
  }, []);
  if (limits.status !== "ready") return <Pending state={limits} />;

  const { errors, value } = checkDraft(draft, limits.value.limits);
  const set = (field: keyof DatanetDraft, fieldValue: string | string[]) => {
    setDraft((d) => ({ ...d, [field]: fieldValue }));
    setTouched((t) => ({ ...t, [field]: true }));
  };
  const setKind = (kind: Kind) => setDraft((d) => ({ ...d, kind, formats: formatsOfKind(kind) }));
  const metadataBytes = value
    ? bytes(value.name).length + bytes(value.summary).length + value.tags.reduce((n, t) => n + bytes(t).length, 0)
    : 0;
  const deposit = limits.value.base + limits.value.perByte * BigInt(metadataBytes);
  // Show a field's problem once the user has typed in it, or all of them on an attempt.
  const shown = (field: string, key = field) => (touched[key] ? errors[field] : undefined);

  const field = (id: string, label: string, key: keyof DatanetDraft, error: string | undefined, hint?: string) => (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={draft[key] as string}
        onChange={(e) => set(key, e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${id}-error` : hint ? `${id}-hint` : undefined}
      />
      {hint && !error && (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} className="error">
          {error}
        </small>
      )}
    </div>
  );

  return (
    <form className="card" aria-labelledby="create-title" onSubmit={(e) => e.preventDefault()}>
      <h2 id="create-title">Create a datanet</h2>
      {field("dn-name", "Name", "name", shown("name"))}
      {field("dn-summary", "Summary", "summary", shown("summary"), "What it collects and why.")}
      {field("dn-tags", "Tags", "tags", shown("tags"), "Comma-separated, e.g. recipes, french")}
      <div className="field">
        <label htmlFor="dn-kind">Kind</label>
        <select id="dn-kind" value={draft.kind} onChange={(e) => setKind(e.target.value as Kind)}>
          <option value="Text">Text</option>
          <option value="Image">Image</option>
          <option value="Audio">Audio</option>
        </select>
        <small className="hint">Fixed for the datanet's life.</small>
      </div>
      <fieldset className="field" aria-describedby={errors.formats ? "dn-formats-error" : undefined}>
        <legend>Formats admitted</legend>
        {formatsOfKind(draft.kind).map((name) => (
          <label key={name} className="inline">
            <input
              type="checkbox"
              checked={draft.formats.includes(name)}
              onChange={(e) =>
                set("formats", e.target.checked ? [...draft.formats, name] : draft.formats.filter((f) => f !== name))
              }
            />
            {name}
          </label>
        ))}
        {errors.formats && (
          <small id="dn-formats-error" className="error">
            {errors.formats}
          </small>
        )}
      </fieldset>
      {field("dn-max-file", "Largest file (MiB)", "maxFileMib", shown("maxFile", "maxFileMib"))}
      {field("dn-daily", "Admitted per day, all contributors (MiB)", "dailyMib", shown("daily", "dailyMib"))}
      <p>
        Deposit held while the datanet is open: <strong>{formatAmount(chain, deposit)}</strong>
      </p>
      <TxButton
        label="Create datanet"
        disabled={!value}
        build={() =>
          value
            ? chain.api.tx.Datanets.create({
                name: bytes(value.name),
                summary: bytes(value.summary),
                tags: value.tags.map(bytes),
                kind: { type: value.kind, value: undefined },
                formats: value.formats,
                caps: { max_file_bytes: value.maxFileBytes, daily_bytes: value.dailyBytes },
              })
            : "Fix the fields marked above first."
        }
        onSuccess={(events) => {
          const created = events.find((e) => e.type === "Datanets" && e.value.type === "DatanetCreated");
          const id = (created?.value.value as { datanet?: number } | undefined)?.datanet;
          setDraft(EMPTY);
          setTouched({});
          if (id !== undefined) navigate(`/datanets/${id}`);
        }}
      />
    </form>
  );
}
