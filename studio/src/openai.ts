// The inference server's OpenAI-compatible API, from the same origin that serves Studio.

export interface Share {
  contribution: number;
  share: number;
}

export interface Span {
  text: string;
  tokens: [number, number];
  occurrences: number;
  contributions: number[];
}

/** The `attribution` field the server adds to each answer from a fine-tune. */
export interface Attribution {
  model: string;
  job: number;
  adapter: string;
  /** How the shares were decided: `{"method": "tokens"}` or `{"method": "influence", …}`. */
  method: { method: string } | null;
  /** The job's committed shares, largest first. */
  shares: Share[];
  /** Spans of the answer found verbatim in the training set; null without a span index. */
  spans: Span[] | null;
  answerShares?: Share[];
  covered?: number;
}

export interface Answer {
  text: string;
  finish: string | null;
  attribution: Attribution | null;
  usage?: { prompt_tokens: number; completion_tokens: number };
  /** What it cost, from a paid server. */
  payment?: Charged;
}

export interface Payment {
  paid: boolean;
  operator?: string;
}

/** What a paid server asks a voucher for: the channel, the model's job, the total to sign. */
export interface Required {
  channel: number;
  job: number | null;
  cumulative: string;
  cost: string;
}

/** What an answer cost, as the paid server reports it. */
export interface Charged {
  channel: number;
  job: number | null;
  price: string;
  tokens: number;
  charged: string;
}

/** Paying a paid server: the channel to offer, and how to sign the voucher it asks for. */
export interface Payer {
  channel: number;
  sign: (required: Required) => Promise<{ channel: number; cumulative: string; signature: string }>;
}

class PaymentRequired extends Error {
  constructor(
    message: string,
    readonly required: Required | undefined,
  ) {
    super(message);
  }
}

/** The server's error message, in its own words (OpenAI's `{"error": {"message"}}`). */
async function failure(response: Response): Promise<Error> {
  try {
    const body = (await response.json()) as { error?: { message?: string; required?: Required } };
    if (response.status === 402 && body.error?.message) return new PaymentRequired(body.error.message, body.error.required);
    if (body.error?.message) return new Error(body.error.message);
  } catch {
    // Not JSON: fall through to the status.
  }
  return new Error(`the inference server answered ${response.status} ${response.statusText}`);
}

export async function listModels(): Promise<string[]> {
  const response = await fetch("/v1/models");
  if (!response.ok) throw await failure(response);
  const body = (await response.json()) as { data: { id: string }[] };
  return body.data.map((m) => m.id);
}

export async function paymentMode(): Promise<Payment> {
  const response = await fetch("/v1/payment");
  if (!response.ok) throw await failure(response);
  return (await response.json()) as Payment;
}

export interface ChatRequest {
  model: string;
  messages: { role: "user" | "assistant" | "system"; content: string }[];
  max_tokens: number;
  temperature: number;
  seed?: number;
}

/**
 * Streams a chat answer: `onText` gets the text so far at each piece; resolves with the whole.
 * With a `payer`, the request offers its channel, and the voucher the server then asks for is
 * signed and offered once.
 */
export async function chat(
  request: ChatRequest,
  onText: (text: string) => void,
  signal?: AbortSignal,
  payer?: Payer,
): Promise<Answer> {
  const post = (payment: object | undefined) =>
    fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...request, stream: true, ...(payment && { payment }) }),
      signal,
    });
  let response = await post(payer && { channel: payer.channel });
  if (payer && response.status === 402) {
    const refusal = await failure(response);
    if (!(refusal instanceof PaymentRequired) || !refusal.required) throw refusal;
    response = await post(await payer.sign(refusal.required));
  }
  if (!response.ok || !response.body) throw await failure(response);
  const answer: Answer = { text: "", finish: null, attribution: null };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // Server-sent events are separated by a blank line; each of ours is one `data:` line.
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim())
        .join("");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data) as {
        error?: { message: string };
        choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
        attribution?: Attribution | null;
        usage?: Answer["usage"];
        payment?: Charged | null;
      };
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) {
        answer.text += choice.delta.content;
        onText(answer.text);
      }
      if (choice?.finish_reason) answer.finish = choice.finish_reason;
      if (chunk.attribution !== undefined) answer.attribution = chunk.attribution;
      if (chunk.usage) answer.usage = chunk.usage;
      if (chunk.payment) answer.payment = chunk.payment;
    }
  }
  return answer;
}

/** A model's loss on held-out text, in nats per predicted token (`POST /v1/evaluate`). */
export interface Evaluation {
  model: string;
  texts: number;
  tokens: number;
  loss: number;
  perplexity: number;
}

export async function evaluate(model: string, input: string[]): Promise<Evaluation> {
  const response = await fetch("/v1/evaluate", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, input }),
  });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as Evaluation;
}
