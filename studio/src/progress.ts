// A run's training progress as its worker logs it, read from the inference server
// (`GET /v1/jobs/N/progress`), and the training rate it shows.
import { useEffect, useState } from "react";

export interface Step {
  step: number;
  total_steps: number;
  loss: number;
  lr: number;
  tokens_per_s: number;
  /** On the steps the worker evaluated the held-out files at. */
  eval_loss?: number;
}

/** Polls the server for the worker's progress log every two seconds while `live`. */
export function useProgress(job: bigint | undefined, live: boolean): { steps: Step[]; error?: string } {
  const [state, setState] = useState<{ steps: Step[]; error?: string }>({ steps: [] });
  useEffect(() => {
    if (job === undefined) return;
    let stopped = false;
    const read = async () => {
      try {
        const response = await fetch(`/v1/jobs/${job}/progress`);
        const body = (await response.json()) as { steps?: Step[]; error?: { message: string } };
        if (!stopped) setState(response.ok ? { steps: body.steps ?? [] } : { steps: [], error: body.error?.message });
      } catch (e) {
        if (!stopped) setState((s) => ({ ...s, error: `the inference server does not answer: ${String(e)}` }));
      }
    };
    void read();
    const timer = live ? window.setInterval(() => void read(), 2000) : undefined;
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [job, live]);
  return state;
}

/** The median tokens/s of a run's steps: the rate its worker trained at. */
export function medianRate(steps: Step[]): number | undefined {
  const rates = steps.map((s) => s.tokens_per_s).filter((r) => r > 0).sort((a, b) => a - b);
  return rates.length ? rates[Math.floor(rates.length / 2)] : undefined;
}
