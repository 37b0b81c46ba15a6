"""Helper of scripts/golden-logits.sh: the reference logits of Hugging Face transformers for the
trainer's tiny test checkpoints of the families candle-transformers lacks or routes differently
(GPT-2, BLOOM, DeepSeek-V2, DeepSeek-V3).

  golden_logits.py CHECKPOINTS OUT

CHECKPOINTS holds one directory per family, written by the trainer's test
`write_golden_checkpoints`, and `ids.json`; for DeepSeek also `<family>-adapter`, an adapter
the trainer saved. Writes OUT/<family>.json: the reference, the versions, the token ids and the
logits of every position; for DeepSeek also `adapter_logits`, with the adapter loaded by PEFT.
"""
import json, os, sys

import peft
import torch
import transformers
from transformers import AutoModelForCausalLM

FAMILIES = ("gpt2", "bloom", "deepseek_v2", "deepseek_v3")


def load(path):
    # Eager attention and eager experts: the reference implementations, in f32.
    model, info = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager",
        experts_implementation="eager", output_loading_info=True)
    # A weight left at its random initialisation would make the reference meaningless.
    if info["missing_keys"] or info["unexpected_keys"]:
        sys.exit(f"{path}: missing {info['missing_keys']}, unexpected {info['unexpected_keys']}")
    return model.eval()


def logits_of(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    return [[float(f"{v:.7g}") for v in row] for row in logits.tolist()]


def main(checkpoints, out):
    ids = json.load(open(os.path.join(checkpoints, "ids.json")))
    for family in FAMILIES:
        model = load(os.path.join(checkpoints, family))
        golden = {
            "reference": f"transformers {transformers.__version__} {type(model).__name__}, "
                         f"torch {torch.__version__}, f32, eager attention and experts",
            "generated_by": "scripts/golden-logits.sh",
            "ids": ids,
            "logits": logits_of(model, ids),
        }
        adapter = os.path.join(checkpoints, f"{family}-adapter")
        if os.path.isdir(adapter):
            adapted = peft.PeftModel.from_pretrained(model, adapter)
            # Every tensor of the adapter must have found its module.
            loaded = {n for n, _ in adapted.named_parameters() if "lora_" in n}
            from safetensors import safe_open
            with safe_open(os.path.join(adapter, "adapter_model.safetensors"), "pt") as f:
                saved = len(list(f.keys()))
            if len(loaded) != saved:
                sys.exit(f"{family}: PEFT made {len(loaded)} LoRA tensors of the adapter's {saved}")
            golden["reference"] += f"; adapter_logits with peft {peft.__version__}"
            golden["adapter_logits"] = logits_of(adapted, ids)
        with open(os.path.join(out, f"{family}.json"), "w") as f:
            json.dump(golden, f)
            f.write("\n")
        print(f"{family}: {type(model).__name__}, logits {len(ids)} x {len(golden['logits'][0])}")


if __name__ == "__main__":
    main(*sys.argv[1:])
