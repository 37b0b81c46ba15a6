// What the inference server serves, asked again while a run that was just committed is not
// listed yet: the server lists a run once its commit is final, a block or two after Studio sees
// it in the best block.
import { useEffect, useState } from "react";
import { listModels, paymentMode, type Payment } from "./openai";

export interface Served {
  /** The server's models, the base first; undefined until it answers. */
  models?: string[];
  paid: boolean;
  /** The account a paid server's channels must pay. */
  operator?: string;
  /** The server does not answer, in words. */
  problem?: string;
  /** `wanted` is a run the server does not list yet, and Studio is still asking. */
  waiting: boolean;
}

export function useServed(wanted: string | null): Served {
  const [models, setModels] = useState<string[]>();
  const [payment, setPayment] = useState<Payment>({ paid: false });
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    Promise.all([listModels(), paymentMode()])
      .then(([list, mode]) => {
        setModels(list);
        setPayment(mode);
      })
      .catch((e) =>
        setProblem(`The inference server does not answer here (${String(e)}). Studio needs the server that serves it.`),
      );
  }, []);
  const [gaveUp, setGaveUp] = useState(false);
  const waiting = models !== undefined && wanted !== null && /^job-\d+$/.test(wanted) && !models.includes(wanted) && !gaveUp;
  useEffect(() => {
    if (!waiting) return;
    const timer = window.setInterval(() => void listModels().then(setModels, () => undefined), 2000);
    const limit = window.setTimeout(() => setGaveUp(true), 60_000);
    return () => {
      window.clearInterval(timer);
      window.clearTimeout(limit);
    };
  }, [waiting]);
  return { models, paid: payment.paid, operator: payment.operator, problem, waiting };
}

/** What a page says while it waits for the server to list `wanted`. */
export const waitingWords = (wanted: string) =>
  `Waiting for the server to list ${wanted}: it serves a run once its commit is final…`;
