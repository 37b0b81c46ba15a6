"""Helper of scripts/bench-trainer.sh; runs inside its throwaway venv.

  bench_trainer.py make  CONFIG DIR STEPS   random HF checkpoint, word-level tokenizer and data
  bench_trainer.py targets CONFIG           the LoRA targets, comma-separated
  bench_trainer.py torch CONFIG DIR STEPS   the same LoRA training with PyTorch + PEFT
  bench_trainer.py peft-check BASE ADAPTER MERGED
      loads the trainer's adapter with peft.PeftModel and its `merge` output with transformers,
      and fails unless both give the same logits and the adapter changes them

Config smollm2 is the real SmolLM2-135M-Instruct GGUF at $PROVENANT_SMOLLM2_GGUF (fetched by
scripts/fetch-models.sh); `make` writes only its data, and PyTorch loads the GGUF through
transformers' `gguf_file` (dequantised to f32, as the trainer's LoRA run does).
"""
import json, os, random, resource, sys, time

CONFIGS = {
    # The reference shape: PyTorch+PEFT did 11,500 tok/s on 2 threads.
    "llama-4l": dict(kind="llama", hidden=256, layers=4, heads=4, kv=2, ffn=768, vocab=1000),
    "gpt2-small": dict(kind="gpt2", hidden=768, layers=12, heads=12, ffn=3072, vocab=50257),
    "llama-100m": dict(kind="llama", hidden=768, layers=12, heads=12, kv=4, ffn=2048, vocab=16000),
    "smollm2": dict(kind="gguf"),
    # DeepSeek-V2-Lite's shape scaled down: latent attention without query compression, one
    # dense block, then 8 routed experts (2 a token) beside 2 shared ones.
    "deepseek-v2": dict(kind="deepseek_v2", hidden=256, layers=4, heads=4, ffn=768, vocab=1000,
                        kv_rank=64, nope=32, rope=16, value=32, experts=8, per_token=2,
                        shared=2, expert_ffn=192),
}
WORDS = ("the of and to in is was for on with as by at from that this it are be or an which "
         "river city north south field stone light water garden winter market bridge valley").split()
BATCH, SEQ = 8, 128
# LoRA on the queries and values: GPT-2's fused c_attn; DeepSeek's values come out of kv_b_proj.
TARGETS = {"gpt2": ["c_attn"], "deepseek_v2": ["q_proj", "kv_b_proj"]}


def make(name, out, steps):
    import torch
    from transformers import (DeepseekV2Config, DeepseekV2ForCausalLM, GPT2Config,
                              GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM)
    c = CONFIGS[name]
    os.makedirs(out, exist_ok=True)
    if c["kind"] == "gguf":
        # English words: the real tokenizer packs them into blocks of SEQ tokens.
        rng = random.Random(0)
        with open(os.path.join(out, "data.jsonl"), "w") as f:
            for _ in range((steps + 2) * BATCH):
                f.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(SEQ))}) + "\n")
        return
    torch.manual_seed(0)
    if c["kind"] == "llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=c["ffn"],
            num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
            num_key_value_heads=c["kv"], max_position_embeddings=512, tie_word_embeddings=False))
    elif c["kind"] == "deepseek_v2":
        model = DeepseekV2ForCausalLM(DeepseekV2Config(
            vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=c["ffn"],
            num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
            num_key_value_heads=c["heads"], q_lora_rank=None, kv_lora_rank=c["kv_rank"],
            qk_nope_head_dim=c["nope"], qk_rope_head_dim=c["rope"], v_head_dim=c["value"],
            n_routed_experts=c["experts"], num_experts_per_tok=c["per_token"],
            n_shared_experts=c["shared"], moe_intermediate_size=c["expert_ffn"],
            first_k_dense_replace=1, topk_method="greedy", max_position_embeddings=512,
            tie_word_embeddings=False))
    else:
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=c["vocab"], n_embd=c["hidden"], n_layer=c["layers"], n_head=c["heads"],
            n_positions=512))
    model.save_pretrained(out, safe_serialization=True)
    vocab = {f"t{i}": i for i in range(c["vocab"] - 1)}
    vocab["[UNK]"] = c["vocab"] - 1
    tokenizer = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                 "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"},
                 "post_processor": None, "decoder": None,
                 "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}}
    json.dump(tokenizer, open(os.path.join(out, "tokenizer.json"), "w"))
    rng = random.Random(0)
    # One text line per block: the trainer packs them back into blocks of SEQ.
    with open(os.path.join(out, "data.jsonl"), "w") as f:
        for _ in range((steps + 2) * BATCH):
            words = " ".join(f"t{rng.randrange(c['vocab'] - 1)}" for _ in range(SEQ))
            f.write(json.dumps({"text": words}) + "\n")


def bench_torch(name, out, steps, compute="f32"):
    """PyTorch + PEFT LoRA; with `compute="bf16"` (or `"f16"`), the forward pass under CPU bf16
    (f16) autocast (the products in 16 bits, the weights, adapters and AdamW state in f32), as
    LLaMA-Factory trains."""
    import contextlib
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    c = CONFIGS[name]
    if c["kind"] == "gguf":
        path = os.environ["PROVENANT_SMOLLM2_GGUF"]
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path),
                                                     dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(out)
    vocab = model.config.vocab_size
    targets = TARGETS.get(c["kind"], ["q_proj", "v_proj"])
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                             target_modules=targets, task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    def step():
        ids = torch.randint(0, vocab - 1, (BATCH, SEQ), generator=gen)
        half = {"bf16": torch.bfloat16, "f16": torch.float16}.get(compute)
        autocast = (torch.autocast("cpu", dtype=half) if half is not None
                    else contextlib.nullcontext())
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens_per_s": steps * BATCH * SEQ / seconds, "peak_rss_mib": rss}))


def peft_check(base, adapter, merged):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    ours = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size - 1, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with_adapter = model(input_ids=ids).logits
        with model.disable_adapter():
            without = model(input_ids=ids).logits
        merged_logits = ours(input_ids=ids).logits
    difference = (with_adapter - merged_logits).abs().max().item()
    effect = (with_adapter - without).abs().max().item()
    print(json.dumps({"peft_vs_merged_max_logit_diff": difference, "adapter_effect_max_logit": effect}))
    # The adapter's effect after a few steps is small, so it must stand well clear of float noise.
    if not (difference < 1e-4 and effect > 10 * difference):
        sys.exit(f"PEFT check failed: PEFT and the merged model differ by {difference}, the adapter moves logits by {effect}")


if __name__ == "__main__":
    if sys.argv[1] == "peft-check":
        peft_check(*sys.argv[2:5])
        sys.exit()
    if sys.argv[1] == "targets":
        print(",".join(TARGETS.get(CONFIGS[sys.argv[2]].get("kind"), ["q_proj", "v_proj"])))
        sys.exit()
    command, name, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if command == "torch":
        bench_torch(name, out, steps, *sys.argv[5:6])
    else:
        make(name, out, steps)
