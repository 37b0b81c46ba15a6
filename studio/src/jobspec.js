// The trainer's hyper-parameter rules (`jobspec/src/lib.rs`, the one function the runtime, the
// trainer and the CLI apply), reimplemented so ModelFactory validates as you type. Plain
// JavaScript with JSDoc types, checked against the crate's own test cases by
// tests/jobspec.test.mjs.

export const NANO = 1_000_000_000;
export const MICRO = 1_000_000;
export const MAX_RANK = 256;
export const MAX_EVAL_FRACTION = MICRO / 2;
const U32_MAX = 4_294_967_295;

/** Every module, in bit order (`Module::ALL`). */
export const MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
  "c_attn",
  "c_proj",
  "c_fc",
  "query_key_value",
  "dense",
  "dense_h_to_4h",
  "dense_4h_to_h",
  "q_a_proj",
  "q_b_proj",
  "kv_a_proj_with_mqa",
  "kv_b_proj",
];

/** @typedef {"Llama" | "DeepSeek" | "Mistral" | "Qwen" | "Bloom" | "Gpt2" | "ChatGlm"} Family */

const DECODER = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
const LATENT = ["q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"];
const FUSED = ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"];

/** @type {Record<Family, { name: string, modules: string[], defaults: string[] }>} */
export const FAMILIES = {
  Llama: { name: "llama", modules: DECODER, defaults: ["q_proj", "v_proj"] },
  DeepSeek: { name: "deepseek", modules: [...LATENT, "gate_proj", "up_proj", "down_proj"], defaults: LATENT },
  Mistral: { name: "mistral", modules: DECODER, defaults: ["q_proj", "v_proj"] },
  Qwen: { name: "qwen", modules: DECODER, defaults: ["q_proj", "v_proj"] },
  Bloom: { name: "bloom", modules: FUSED, defaults: ["query_key_value"] },
  Gpt2: { name: "gpt2", modules: ["c_attn", "c_proj", "c_fc"], defaults: ["c_attn"] },
  ChatGlm: { name: "chatglm", modules: FUSED, defaults: ["query_key_value"] },
};

/** @param {string[]} names @returns {number} */
export const moduleBits = (names) => names.reduce((bits, name) => bits | (1 << MODULES.indexOf(name)), 0);
/** @param {number} bits @returns {string[]} */
export const moduleNames = (bits) => MODULES.filter((_, i) => bits & (1 << i));

/**
 * @typedef {object} HyperParams every field in the chain's exact integer units
 * @property {{ type: "Lora" } | { type: "Qlora", value: { bits: number } }} method
 * @property {number} learning_rate billionths
 * @property {number} epochs
 * @property {number} batch_size
 * @property {number} grad_accum
 * @property {number} cutoff_len
 * @property {number} warmup_steps
 * @property {"Cosine" | "Linear" | "Constant"} schedule
 * @property {number} weight_decay billionths
 * @property {number} max_grad_norm billionths
 * @property {number | undefined} max_steps
 * @property {number} rank
 * @property {number} alpha
 * @property {number} dropout millionths
 * @property {boolean} rslora
 * @property {number} targets module bits
 * @property {bigint} seed
 * @property {number} eval_fraction millionths
 */

/**
 * The trainer's defaults for `family` (`HyperParams::defaults`).
 * @param {Family} family
 * @returns {HyperParams}
 */
export function defaults(family) {
  return {
    method: { type: "Lora" },
    learning_rate: 200_000,
    epochs: 3,
    batch_size: 4,
    grad_accum: 1,
    cutoff_len: 256,
    warmup_steps: 0,
    schedule: "Cosine",
    weight_decay: 0,
    max_grad_norm: NANO,
    max_steps: undefined,
    rank: 8,
    alpha: 16,
    dropout: 50_000,
    rslora: false,
    targets: moduleBits(FAMILIES[family].defaults),
    seed: 42n,
    eval_fraction: 100_000,
  };
}

/** `value` parts of `unit` as a decimal without trailing zeros (the crate's `Decimal`). */
function decimal(/** @type {number} */ value, /** @type {number} */ unit) {
  const whole = Math.floor(value / unit);
  const rest = value % unit;
  if (rest === 0) return String(whole);
  return `${whole}.${String(rest).padStart(String(unit).length - 1, "0").replace(/0+$/, "")}`;
}

/**
 * Judges `params` for a base model of `family` with `maxPositions`, naming the first field that
 * breaks a rule, in the crate's words: `{ ok: true }` or `{ ok: false, field, message }`.
 * @param {HyperParams} params
 * @param {{ family: Family, maxPositions: number }} limits
 * @returns {{ ok: true } | { ok: false, field: string, message: string }}
 */
export function check(params, limits) {
  /** @param {string} field @param {string} message */
  const refuse = (field, message) => ({ ok: /** @type {const} */ (false), field, message });
  if (params.method.type === "Qlora" && params.method.value.bits !== 4 && params.method.value.bits !== 8)
    return refuse("bits", `QLoRA takes 4 or 8 bits, got ${params.method.value.bits}`);
  /** @param {string} field @param {number} value @param {boolean} positive @param {number} max */
  const rate = (field, value, positive, max) => {
    if (positive && value === 0) return refuse(field, "must be a positive number, got 0");
    if (value > max) return refuse(field, `must be at most ${decimal(max, NANO)}, got ${decimal(value, NANO)}`);
    return undefined;
  };
  const lr = rate("learning_rate", params.learning_rate, true, NANO);
  if (lr) return lr;
  for (const field of /** @type {const} */ (["epochs", "batch_size", "grad_accum"])) {
    if (params[field] === 0) return refuse(field, "must be at least 1");
  }
  if (params.cutoff_len < 2) return refuse("cutoff_len", "must be at least 2 tokens");
  if (params.cutoff_len > limits.maxPositions)
    return refuse("cutoff_len", `${params.cutoff_len} is beyond the model's ${limits.maxPositions} positions`);
  const decay = rate("weight_decay", params.weight_decay, false, NANO);
  if (decay) return decay;
  const norm = rate("max_grad_norm", params.max_grad_norm, true, U32_MAX);
  if (norm) return norm;
  if (params.max_steps === 0) return refuse("max_steps", "must be at least 1");
  if (params.rank === 0) return refuse("rank", "must be at least 1");
  if (params.rank > MAX_RANK) return refuse("rank", `must be at most ${MAX_RANK}, got ${params.rank}`);
  if (params.alpha === 0) return refuse("alpha", "must be at least 1");
  if (params.dropout >= MICRO) return refuse("dropout", `must be in [0, 1), got ${decimal(params.dropout, MICRO)}`);
  const family = FAMILIES[limits.family];
  if (params.targets >> MODULES.length !== 0) return refuse("target_modules", "names a module that does not exist");
  if (params.targets === 0) return refuse("target_modules", "name at least one module");
  const stranger = moduleNames(params.targets).find((m) => !family.modules.includes(m));
  if (stranger)
    return refuse("target_modules", `${stranger} is not a module of ${family.name}; it has ${family.modules.join(", ")}`);
  if (params.eval_fraction > MAX_EVAL_FRACTION)
    return refuse(
      "eval_fraction",
      `must be in [0, ${decimal(MAX_EVAL_FRACTION, MICRO)}], got ${decimal(params.eval_fraction, MICRO)}`,
    );
  return { ok: true };
}

/**
 * A float in `unit`ths, rounded to the nearest (`to_units`): undefined for a negative,
 * non-finite or too large value.
 * @param {number} value @param {number} unit @returns {number | undefined}
 */
export function toUnits(value, unit) {
  const scaled = value * unit;
  if (!Number.isFinite(scaled) || scaled < 0 || scaled > U32_MAX) return undefined;
  const floor = Math.floor(scaled);
  return scaled - floor >= 0.5 ? Math.min(floor + 1, U32_MAX) : floor;
}
