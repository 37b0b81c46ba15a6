"""llama.cpp (llama-cpp-python) on the same GGUF with the same threads: time to first token
and decode tokens/s of one stream, greedy, median of the repeats. Prints one JSON object."""
import argparse
import json
import statistics
import time

from llama_cpp import Llama

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--prompt", required=True)
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

llm = Llama(model_path=args.model, n_threads=args.threads, n_ctx=1024, verbose=False)
prompt_tokens = len(llm.tokenize(args.prompt.encode()))


def run(tokens):
    llm.reset()
    started = time.perf_counter()
    first = None
    count = 0
    # The end token masked out: every run generates exactly `tokens`.
    for _ in llm.create_completion(
        args.prompt,
        max_tokens=tokens,
        temperature=0.0,
        stream=True,
        logit_bias={llm.token_eos(): -1e9},
    ):
        count += 1
        if first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    return first, (count - 1) / (total - first), count


run(4)
results = [run(args.tokens) for _ in range(args.repeats)]
print(
    json.dumps(
        {
            "version": __import__("llama_cpp").__version__,
            "promptTokens": prompt_tokens,
            "threads": args.threads,
            "ttftSeconds": statistics.median(r[0] for r in results),
            "decodeTokensPerSecond": statistics.median(r[1] for r in results),
            "generated": [r[2] for r in results],
        }
    )
)
