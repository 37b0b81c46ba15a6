// Contribute: choose a datanet, drop files, see each judged by the datanet's rules before any
// fee, upload the ones that pass, and follow each to its verdict.
import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { formatBytes, text, type Chain } from "../chain";
import { Pending, useChain, useChainQuery } from "../connection";
import { formatNames } from "../rules";
import { check, contentHash, usageOn, type SubmissionRules } from "../submission.js";
import { TxButton } from "../tx";
import { REASON_WORDS } from "../votes";
import { useWallet } from "../wallet";

interface Picked {
  name: string;
  data: Uint8Array;
  /** The detected format, or why the chain would refuse the file. */
  verdict: ReturnType<typeof check>;
  /** Its contribution number once it is on chain. */
  contribution?: bigint;
}


/** The rules a file is judged by now, read from the best block, for `who` on `datanet`. */
async function rulesFor(chain: Chain, datanet: number, who: string): Promise<SubmissionRules | undefined> {
  const { api } = chain;
  const at = { at: "best" as const };
  const [info, account, usage, blocksPerDay, dailyFiles, dailyBytes, block] = await Promise.all([
    api.query.Datanets.Datanets.getValue(datanet, at),
    api.query.Datanets.AccountUsage.getValue(who, at),
    api.query.Datanets.DatanetUsage.getValue(datanet, at),
    api.constants.Datanets.BlocksPerDay(),
    api.constants.Datanets.AccountDailyFiles(),
    api.constants.Datanets.AccountDailyBytes(),
    api.query.System.Number.getValue(at),
  ]);
  if (!info) return undefined;
  // The pallet judges a file in the block that includes it, the next one.
  const today = Math.floor((block + 1) / blocksPerDay);
  return {
    kind: info.kind.type,
    formats: info.formats,
    caps: info.caps,
    status: info.status.type,
    accountUsage: usageOn(account, today),
    datanetUsage: usageOn(usage, today),
    accountDailyFiles: dailyFiles,
    accountDailyBytes: dailyBytes,
  };
}

/** Judges files in order, as one batch: each admitted one counts against the caps of the next. */
async function judge(chain: Chain, datanet: number, who: string, files: File[]): Promise<Picked[]> {
  const rules = await rulesFor(chain, datanet, who);
  if (!rules) throw new Error(`there is no datanet ${datanet}`);
  const picked: Picked[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const data = new Uint8Array(await file.arrayBuffer());
    const hash = contentHash(data);
    const known =
      seen.has(hash) ||
      (await chain.api.query.Datanets.ContributionByContent.getValue(datanet, hash, { at: "best" })) !== undefined;
    const verdict = check(rules, data, () => known);
    if (verdict.ok) {
      seen.add(verdict.hash);
      const size = BigInt(data.length);
      rules.accountUsage = { ...rules.accountUsage, files: rules.accountUsage.files + 1, bytes: rules.accountUsage.bytes + size };
      rules.datanetUsage = { ...rules.datanetUsage, files: rules.datanetUsage.files + 1, bytes: rules.datanetUsage.bytes + size };
    }
    picked.push({ name: file.name, data, verdict });
  }
  return picked;
}

function Status({ contribution }: { contribution: bigint }) {
  const state = useChainQuery(
    async ({ api }) => {
      const at = { at: "best" as const };
      const [record, verdict] = await Promise.all([
        api.query.Datanets.Contributions.getValue(contribution, at),
        api.query.Validation.Verdicts.getValue(contribution, at),
      ]);
      return { status: record?.status.type ?? "Unknown", reason: verdict?.reason?.type };
    },
    [contribution],
  );
  if (state.status !== "ready") return <span>#{String(contribution)}</span>;
  const { status, reason } = state.value;
  return (
    <span className={`status-${status.toLowerCase()}`}>
      #{String(contribution)}: {status === "Pending" ? "on chain, waiting for validators" : status}
      {reason ? `: ${REASON_WORDS[reason] ?? reason}` : ""}
    </span>
  );
}

export function ContributePage() {
  const chain = useChain();
  const { selected } = useWallet();
  const [params, setParams] = useSearchParams();
  const [picked, setPicked] = useState<Picked[]>([]);
  const [problem, setProblem] = useState<string>();
  const [dragging, setDragging] = useState(false);
  const datanets = useChainQuery(async ({ api }) => {
    const entries = await api.query.Datanets.Datanets.getEntries({ at: "best" });
    return entries.map(({ keyArgs: [id], value }) => ({ id, ...value })).sort((a, b) => a.id - b.id);
  }, []);
  if (datanets.status !== "ready") return <Pending state={datanets} />;

  const open = datanets.value.filter((d) => d.status.type === "Active");
  const chosen = open.find((d) => String(d.id) === params.get("datanet")) ?? open[0];

  const take = async (files: File[]) => {
    setProblem(undefined);
    if (!chosen || !selected || files.length === 0) return;
    try {
      setPicked(await judge(chain, chosen.id, selected.address, files));
    } catch (e) {
      setProblem(`Could not check the files: ${String(e)}`);
    }
  };

  return (
    <section aria-labelledby="contribute-title">
      <h1 id="contribute-title">Contribute</h1>
      <p className="lede">
        Add files to a datanet. Each is checked here against the datanet's published rules before you pay a fee; validators
        then judge the ones on chain, and accepted files earn from the datanet's pool.
      </p>
      {open.length === 0 ? (
        <p className="empty">
          No datanet takes files right now. <Link to="/datanets">Create one</Link>.
        </p>
      ) : (
        <>
          <div className="field">
            <label htmlFor="contribute-datanet">Datanet</label>
            <select
              id="contribute-datanet"
              value={chosen ? String(chosen.id) : ""}
              onChange={(e) => {
                setParams({ datanet: e.target.value }, { replace: true });
                setPicked([]);
              }}
            >
              {open.map((d) => (
                <option key={d.id} value={String(d.id)}>
                  #{d.id} {text(d.metadata.name)} ({d.kind.type.toLowerCase()})
                </option>
              ))}
            </select>
            {chosen && (
              <small className="hint">
                Admits {formatNames(chosen.formats).join(", ")}; files up to {formatBytes(chosen.caps.max_file_bytes)}.
              </small>
            )}
          </div>
          <label
            className={dragging ? "drop dragging" : "drop"}
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={(e) => {
              e.preventDefault();
              setDragging(false);
              void take([...e.dataTransfer.files]);
            }}
          >
            Drop files here, or choose them
            <input
              type="file"
              multiple
              onChange={(e) => {
                void take([...(e.target.files ?? [])]);
                e.target.value = "";
              }}
            />
          </label>
          {problem && (
            <p role="alert" className="error">
              {problem}
            </p>
          )}
          {picked.length > 0 && (
            <div className="table-wrap">
              <table aria-label="Files to contribute">
                <thead>
                  <tr>
                    <th scope="col">File</th>
                    <th scope="col">Size</th>
                    <th scope="col">Check</th>
                    <th scope="col">On chain</th>
                  </tr>
                </thead>
                <tbody>
                  {picked.map((p, i) => (
                    <tr key={`${p.name}-${i}`}>
                      <td className="wrap">{p.name}</td>
                      <td>{formatBytes(p.data.length)}</td>
                      <td className="wrap">
                        {p.verdict.ok ? (
                          <span className="ok">Passes: {p.verdict.format}</span>
                        ) : (
                          <span className="error">Refused: {p.verdict.refusal}</span>
                        )}
                      </td>
                      <td className="wrap">
                        {p.contribution !== undefined ? (
                          <Status contribution={p.contribution} />
                        ) : !p.verdict.ok ? (
                          "—"
                        ) : (
                          <TxButton
                            label={`Upload ${p.name}`}
                            build={() => chain.api.tx.Datanets.submit({ datanet: chosen!.id, data: p.data })}
                            onSuccess={(events) => {
                              const submitted = events.find(
                                (e) => e.type === "Datanets" && e.value.type === "ContributionSubmitted",
                              )?.value.value as { contribution: bigint } | undefined;
                              if (submitted)
                                setPicked((all) =>
                                  all.map((q, j) => (j === i ? { ...q, contribution: submitted.contribution } : q)),
                                );
                            }}
                          />
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
