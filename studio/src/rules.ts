// A datanet's published rules, as the datanets pallet defines them: the formats of each kind,
// one bit each in the order of the pallet's `Format::ALL`, and the caps.
import { FORMAT_NAMES, kindOf } from "./submission.js";

export type Kind = "Text" | "Image" | "Audio";

export const FORMATS: { name: string; kind: Kind }[] = FORMAT_NAMES.map((name) => ({ name, kind: kindOf(name) }));

export const formatsOfKind = (kind: Kind): string[] => FORMATS.filter((f) => f.kind === kind).map((f) => f.name);

/** The set's bits, as the chain stores them. */
export function formatBits(names: string[]): number {
  return names.reduce((bits, name) => {
    const index = FORMATS.findIndex((f) => f.name === name);
    if (index < 0) throw new Error(`unknown format ${name}`);
    return bits | (1 << index);
  }, 0);
}

export const formatNames = (bits: number): string[] => FORMATS.filter((_, i) => bits & (1 << i)).map((f) => f.name);

const MIB = 1024 * 1024;

export interface DatanetDraft {
  name: string;
  summary: string;
  tags: string;
  kind: Kind;
  formats: string[];
  maxFileMib: string;
  dailyMib: string;
}

export interface Limits {
  maxNameLen: number;
  maxSummaryLen: number;
  maxTagLen: number;
  maxTags: number;
  /** The runtime's hard cap on one file. */
  maxFileBytes: number;
}

export interface CheckedDraft {
  name: string;
  summary: string;
  tags: string[];
  kind: Kind;
  formats: number;
  maxFileBytes: number;
  dailyBytes: bigint;
}

const byteLength = (text: string) => new TextEncoder().encode(text).length;

/**
 * The datanets pallet's checks on a new datanet, so the form says what is wrong before a fee
 * is paid. Returns the problems by field, or the values to submit.
 */
export function checkDraft(draft: DatanetDraft, limits: Limits): { errors: Record<string, string>; value?: CheckedDraft } {
  const errors: Record<string, string> = {};
  const name = draft.name.trim();
  if (!name) errors.name = "A datanet needs a name.";
  else if (byteLength(name) > limits.maxNameLen) errors.name = `At most ${limits.maxNameLen} bytes.`;
  if (byteLength(draft.summary) > limits.maxSummaryLen) errors.summary = `At most ${limits.maxSummaryLen} bytes.`;
  const tags = draft.tags
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  if (tags.length > limits.maxTags) errors.tags = `At most ${limits.maxTags} tags.`;
  else if (tags.some((t) => byteLength(t) > limits.maxTagLen)) errors.tags = `Each tag at most ${limits.maxTagLen} bytes.`;
  if (draft.formats.length === 0) errors.formats = "Admit at least one format.";
  else if (draft.formats.some((f) => FORMATS.find((x) => x.name === f)?.kind !== draft.kind))
    errors.formats = `Only ${draft.kind.toLowerCase()} formats fit a ${draft.kind.toLowerCase()} datanet.`;
  const maxFile = Number(draft.maxFileMib);
  const daily = Number(draft.dailyMib);
  const maxFileBytes = Math.round(maxFile * MIB);
  const dailyBytes = Math.round(daily * MIB);
  if (!draft.maxFileMib.trim() || !Number.isFinite(maxFile) || maxFile <= 0) errors.maxFile = "A size in MiB above 0.";
  else if (maxFileBytes > limits.maxFileBytes)
    errors.maxFile = `The chain admits files of at most ${+(limits.maxFileBytes / MIB).toFixed(2)} MiB.`;
  if (!draft.dailyMib.trim() || !Number.isFinite(daily) || daily <= 0) errors.daily = "A size in MiB above 0.";
  else if (!errors.maxFile && dailyBytes < maxFileBytes) errors.daily = "The daily cap must hold at least one largest file.";
  if (Object.keys(errors).length > 0) return { errors };
  return {
    errors,
    value: {
      name,
      summary: draft.summary,
      tags,
      kind: draft.kind,
      formats: formatBits(draft.formats),
      maxFileBytes,
      dailyBytes: BigInt(dailyBytes),
    },
  };
}
