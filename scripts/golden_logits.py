"""Helper of scripts/golden-logits.sh: the reference logits of Hugging Face transformers for the
trainer's tiny GPT-2 and BLOOM test checkpoints (candle-transformers has neither model).

  golden_logits.py CHECKPOINTS OUT

CHECKPOINTS holds one directory per family, written by the trainer's test
`write_golden_checkpoints`, and `ids.json`. Writes OUT/<family>.json: the reference, the
versions, the token ids and the logits of every position.
"""
import json, os, sys

import torch
import transformers
from transformers import AutoModelForCausalLM


def main(checkpoints, out):
    ids = json.load(open(os.path.join(checkpoints, "ids.json")))
    for family in ("gpt2", "bloom"):
        model, info = AutoModelForCausalLM.from_pretrained(
            os.path.join(checkpoints, family), dtype=torch.float32, attn_implementation="eager",
            output_loading_info=True)
        # A weight left at its random initialisation would make the reference meaningless.
        if info["missing_keys"] or info["unexpected_keys"]:
            sys.exit(f"{family}: missing {info['missing_keys']}, unexpected {info['unexpected_keys']}")
        model.eval()
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        golden = {
            "reference": f"transformers {transformers.__version__} {type(model).__name__}, "
                         f"torch {torch.__version__}, f32, eager attention",
            "generated_by": "scripts/golden-logits.sh",
            "ids": ids,
            "logits": [[float(f"{v:.7g}") for v in row] for row in logits.tolist()],
        }
        with open(os.path.join(out, f"{family}.json"), "w") as f:
            json.dump(golden, f)
            f.write("\n")
        print(f"{family}: {type(model).__name__}, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
