// Studio's copy of the trainer's hyper-parameter rules against the jobspec crate's own cases
// (jobspec/src/lib.rs): the same field named, in the same words.
import assert from "node:assert/strict";
import { test } from "node:test";
import { check, defaults, FAMILIES, MAX_EVAL_FRACTION, MAX_RANK, MICRO, moduleBits, NANO, toUnits } from "../src/jobspec.js";

const limits = { family: "Llama", maxPositions: 2048 };
const refused = (change) => {
  const params = defaults("Llama");
  change(params);
  const verdict = check(params, limits);
  assert.equal(verdict.ok, false, "the change breaks a rule");
  return verdict;
};

test("the defaults pass for every family", () => {
  for (const family of Object.keys(FAMILIES)) {
    assert.deepEqual(check(defaults(family), { family, maxPositions: 1024 }), { ok: true }, family);
  }
});

test("each rule names its field and the numbers", () => {
  const cases = [
    [(p) => (p.method = { type: "Qlora", value: { bits: 3 } }), "bits: QLoRA takes 4 or 8 bits, got 3"],
    [(p) => (p.learning_rate = 0), "learning_rate: must be a positive number, got 0"],
    [(p) => (p.learning_rate = NANO + 1), "learning_rate: must be at most 1, got 1.000000001"],
    [(p) => (p.epochs = 0), "epochs: must be at least 1"],
    [(p) => (p.batch_size = 0), "batch_size: must be at least 1"],
    [(p) => (p.grad_accum = 0), "grad_accum: must be at least 1"],
    [(p) => (p.cutoff_len = 1), "cutoff_len: must be at least 2 tokens"],
    [(p) => (p.cutoff_len = 2049), "cutoff_len: 2049 is beyond the model's 2048 positions"],
    [(p) => (p.weight_decay = 2 * NANO), "weight_decay: must be at most 1, got 2"],
    [(p) => (p.max_grad_norm = 0), "max_grad_norm: must be a positive number, got 0"],
    [(p) => (p.max_steps = 0), "max_steps: must be at least 1"],
    [(p) => (p.rank = 0), "rank: must be at least 1"],
    [(p) => (p.rank = 512), "rank: must be at most 256, got 512"],
    [(p) => (p.dropout = MICRO), "dropout: must be in [0, 1), got 1"],
    [
      (p) => (p.targets = moduleBits(["q_proj", "c_attn"])),
      "target_modules: c_attn is not a module of llama; it has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
    ],
    [(p) => (p.eval_fraction = 600_000), "eval_fraction: must be in [0, 0.5], got 0.6"],
  ];
  for (const [change, expected] of cases) {
    const verdict = refused(change);
    assert.equal(`${verdict.field}: ${verdict.message}`, expected);
  }
  assert.equal(refused((p) => (p.alpha = 0)).field, "alpha");
  assert.equal(refused((p) => (p.targets = 0)).message, "name at least one module");
  assert.equal(refused((p) => (p.targets = 1 << 20)).message, "names a module that does not exist");
});

test("the first broken field is named", () => {
  assert.equal(
    refused((p) => {
      p.rank = 0;
      p.epochs = 0;
    }).field,
    "epochs",
  );
});

test("boundaries are allowed", () => {
  const params = defaults("Gpt2");
  params.learning_rate = NANO;
  params.cutoff_len = 1024;
  params.rank = MAX_RANK;
  params.dropout = MICRO - 1;
  params.eval_fraction = MAX_EVAL_FRACTION;
  params.method = { type: "Qlora", value: { bits: 8 } };
  params.targets = moduleBits(FAMILIES.Gpt2.modules);
  assert.deepEqual(check(params, { family: "Gpt2", maxPositions: 1024 }), { ok: true });
});

test("floats round to the nearest unit", () => {
  assert.equal(toUnits(2e-4, NANO), 200_000);
  assert.equal(toUnits(0.05, MICRO), 50_000);
  assert.equal(toUnits(-1, NANO), undefined);
  assert.equal(toUnits(Number.NaN, NANO), undefined);
  assert.equal(toUnits(5, NANO), undefined, "past u32");
});
