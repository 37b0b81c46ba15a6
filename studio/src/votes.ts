// A validator's sealed ballots: made and kept in this browser until they are revealed, as the
// CLI keeps them on disk. A ballot is sealed as blake2_256(SCALE(ballot, salt, voter)) (the
// validation pallet's `commitment`), so the salt must survive until the reveal.
import { AccountId, Blake2256 } from "@polkadot-api/substrate-bindings";
import { toHex } from "./hex.js";

/** The reasons a validator may reject a file for, in the pallet's order (its SCALE index). */
export const REASONS = ["BadFormat", "Corrupt", "OffTopic", "NearDuplicate", "LowQuality", "Unsafe", "Other"] as const;
export type Reason = (typeof REASONS)[number];

export const REASON_WORDS: Record<Reason, string> = {
  BadFormat: "not the format it claims",
  Corrupt: "corrupt",
  OffTopic: "off topic",
  NearDuplicate: "a near duplicate of another file",
  LowQuality: "low quality",
  Unsafe: "unsafe",
  Other: "other",
};

/** Accept, or reject for a reason. */
export type Vote = { accept: true } | { accept: false; reason: Reason };

export interface SealedVote {
  contribution: string;
  vote: Vote;
  /** Hex, 32 bytes. */
  salt: string;
}


/** SCALE of `Ballot`: variant 0 is Accept, 1 is Reject(reason). */
function encodeBallot(vote: Vote): number[] {
  return vote.accept ? [0] : [1, REASONS.indexOf(vote.reason)];
}

/** The commitment the pallet recomputes at the reveal. */
export function commitment(vote: Vote, salt: Uint8Array, voter: string): string {
  return toHex(Blake2256(Uint8Array.from([...encodeBallot(vote), ...salt, ...AccountId().enc(voter)])));
}

/** The ballot as the typed API takes it. */
export function ballotArg(vote: Vote) {
  return vote.accept
    ? ({ type: "Accept", value: undefined } as const)
    : ({ type: "Reject", value: { type: vote.reason, value: undefined } } as const);
}

const key = (voter: string) => `provenant.votes.${voter}`;

export function storedVotes(voter: string): SealedVote[] {
  try {
    return JSON.parse(localStorage.getItem(key(voter)) ?? "[]") as SealedVote[];
  } catch {
    return [];
  }
}

/** Seals `vote` with a fresh salt and keeps it before anything is sent. */
export function seal(voter: string, contribution: bigint, vote: Vote): { salt: Uint8Array; commitment: string } {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const votes = storedVotes(voter).filter((v) => v.contribution !== String(contribution));
  votes.push({ contribution: String(contribution), vote, salt: toHex(salt) });
  localStorage.setItem(key(voter), JSON.stringify(votes));
  return { salt, commitment: commitment(vote, salt, voter) };
}

export function forget(voter: string, contribution: string) {
  localStorage.setItem(key(voter), JSON.stringify(storedVotes(voter).filter((v) => v.contribution !== contribution)));
}
