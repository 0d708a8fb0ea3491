"""How faithful the explanations are, and what an explained request costs.

    .venv/bin/python bench/faithfulness.py --artifact DIR --texts TEST_JSON --out RESULT_JSON

Comprehensiveness (ERASER, DeYoung et al. 2020): take the tokens the model reads, delete the
top 20 % by attribution, and see how far the predicted label's probability falls; do the same
with 20 % of the tokens picked at random (the mean of several draws, seeded). An explanation
that names the words the decision rests on makes the first drop far larger than the second.
Every test text counts, with k = ceil(20 % of its tokens) (at least one).

Latency: one text of exactly 100 tokens (real test texts joined and cut at the 100th token),
classified plainly and explained, interleaved, one thread, the median of many repeats; the
difference is what `"explain": true` adds to a request.

Runs with the serving environment's interpreter (tflite-runtime, as on Lambda). The test
texts come from the training job's own split (`harness.py` writes them with the training
environment, which has scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from maas.core.classifier import Classifier
from maas.core.explain import DEFAULT_MAX_INVOKES

FRACTION = 0.2
RANDOM_DRAWS = 5
LATENCY_TOKENS = 100


def comprehensiveness(
    classifier: Classifier, texts: list[str], fraction: float, draws: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    top_drops: list[float] = []
    random_drops: list[float] = []
    invokes: list[int] = []
    for text in texts:
        explanation = classifier.explain(text)
        tokens = explanation.tokens
        if not tokens:
            continue
        label = classifier.labels.index(explanation.label)
        ids = classifier.tokenizer.ids_of([t.token for t in tokens])
        k = max(1, math.ceil(fraction * len(ids)))
        ranked = sorted(range(len(ids)), key=lambda i: (-tokens[i].contribution, i))

        def without(positions: set[int], ids: list[int] = ids, label: int = label) -> float:
            kept = [token for i, token in enumerate(ids) if i not in positions]
            return float(classifier.probabilities_from_ids(kept)[label])

        top_drops.append(explanation.probability - without(set(ranked[:k])))
        sampled = [
            explanation.probability - without(set(rng.sample(range(len(ids)), k)))
            for _ in range(draws)
        ]
        random_drops.append(statistics.fmean(sampled))
        invokes.append(explanation.invokes)
    top, rand = statistics.fmean(top_drops), statistics.fmean(random_drops)
    return {
        "texts": len(top_drops),
        "fraction": fraction,
        "random_draws": draws,
        "top_drop": round(top, 4),
        "random_drop": round(rand, 4),
        "ratio": round(top / rand, 2) if rand > 0 else None,
        "invokes_median": statistics.median(invokes),
        "invokes_max": max(invokes),
    }


def hundred_tokens(classifier: Classifier, texts: list[str]) -> str:
    joined = ""
    for text in texts:
        joined = f"{joined} {text}" if joined else text
        spans = classifier.tokenizer.token_spans(joined)
        if len(spans) >= LATENCY_TOKENS:  # (a cut inside a run of Chinese can leave 101)
            return joined[: spans[LATENCY_TOKENS - 1].end]
    raise SystemExit(f"the test texts hold fewer than {LATENCY_TOKENS} tokens")


def latency(classifier: Classifier, text: str, repeats: int) -> dict[str, Any]:
    plain: list[float] = []
    explained: list[float] = []
    for _ in range(3):  # warm both paths
        classifier.predict([text], explain=True)
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict([text])
        middle = time.perf_counter()
        classifier.predict([text], explain=True)
        plain.append(middle - started)
        explained.append(time.perf_counter() - middle)
    p, e = statistics.median(plain) * 1000, statistics.median(explained) * 1000
    tokens = len(classifier.tokenizer.token_spans(text))
    read = classifier.explain(text)
    return {
        "tokens": tokens,
        "tokens_read": len(read.tokens),
        "invokes": read.invokes,
        "plain_ms": round(p, 3),
        "explained_ms": round(e, 3),
        "added_ms": round(e - p, 3),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of test texts")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N texts")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    if args.limit:
        texts = texts[: args.limit]
    classifier = Classifier.open(args.artifact)
    result = {
        "method": "leave-one-out",
        "max_invokes": DEFAULT_MAX_INVOKES,
        "comprehensiveness": comprehensiveness(
            classifier, texts, FRACTION, RANDOM_DRAWS, args.seed
        ),
        "latency_100_tokens": latency(classifier, hundred_tokens(classifier, texts), args.repeats),
    }
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
