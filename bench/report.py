"""Medians, spreads, ratios and the printed table of bench/harness.py.

A figure is "median [min-max]" over the repeats of this run; a ratio is computed from this
run's medians (and, where the measurements pair up - the same round - its spread is the
min-max of the per-round ratios).
"""

from __future__ import annotations

import statistics
from typing import Any

MB = 1_000_000
COLD_PARTS = (
    ("python_start_s", "python start"),
    ("imports_s", "imports"),
    ("client_s", "S3 client"),
    ("store_s", "store reads + download"),
    ("tokenizer_s", "tokenizer load"),
    ("interpreter_s", "interpreter open"),
    ("keras_load_s", "Keras load_model"),
    ("first_answer_s", "first answer"),
)
COLD_VARIANTS = (
    ("handler_local", "HTTP handler, local store"),
    ("handler_s3", "HTTP handler, S3 store (moto)"),
    ("handler_local_traced", "HTTP handler, local store, X-Ray on"),
    ("tensorflow", "TensorFlow: load_model + predict"),
    ("bare", "bare tflite-runtime: open + invoke"),
)
TARGETS = {
    "cold_local": 10.0,  # TF wall / handler wall at least
    "cold_s3": 6.0,
    "warm_p50_ms_seed": 1.0,
    "handler_overhead": 2.0,  # (handler - bare) / bare at most
    "throughput": 0.70,  # queue handler / bare at least
    "rss_mib": 120.0,
    "bundle_mb": 50.0,
    "faithfulness": 3.0,  # top-20% deletion drop / random-20% deletion drop at least
    "explain_added_ms": 20.0,  # an explained 100-token text adds at most
}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"presets": {}, "targets": {}}
    for preset, data in results["presets"].items():
        s: dict[str, Any] = {}
        cold: dict[str, Any] = {}
        summary["presets"][preset] = s
        s["cold"] = cold
        for variant, runs in data["cold"].items():
            cold[variant] = {
                key: spread([r[key] for r in runs])
                for key in ("total_s", "peak_rss_mib", *(k for k, _ in COLD_PARTS))
                if key in runs[0]
            }
        tf = [r["total_s"] for r in data["cold"]["tensorflow"]]
        for variant in ("handler_local", "handler_s3", "handler_local_traced", "bare"):
            ours = [r["total_s"] for r in data["cold"][variant]]
            cold[variant]["tf_ratio"] = ratio(tf, ours)

        warm: dict[str, Any] = {}
        s["warm"] = warm
        for series, rounds in [*data["warm"]["rounds"].items(), *data["keras"]["rounds"].items()]:
            warm[series] = {
                "p50_ms": spread([r["p50_ms"] for r in rounds]),
                "p99_ms": spread([r["p99_ms"] for r in rounds]),
            }
        for texts in ("review", "short"):
            handler = [r["p50_ms"] for r in data["warm"]["rounds"][f"handler/{texts}"]]
            bare = [r["p50_ms"] for r in data["warm"]["rounds"][f"bare/{texts}"]]
            warm[f"handler/{texts}"]["over_bare"] = ratio(handler, bare)
            warm[f"handler/{texts}"]["overhead_over_bare"] = ratio(
                [h - b for h, b in zip(handler, bare, strict=True)], bare
            )
            for series in ("keras_call", "keras_predict"):
                keras = [r["p50_ms"] for r in data["keras"]["rounds"][f"{series}/{texts}"]]
                warm[f"{series}/{texts}"]["over_handler"] = ratio(keras, handler, paired=False)

        rounds = data["throughput"]["rounds"]
        per_core = {name: [r["texts"] / r["cpu_s"] for r in runs] for name, runs in rounds.items()}
        s["throughput"] = {
            name: {"texts_per_cpu_s": spread(values)} for name, values in per_core.items()
        }
        s["throughput"]["ratio"] = ratio(per_core["queue_handler"], per_core["bare"])

        s["rss_mib"] = {
            "http_cold_local": cold["handler_local"]["peak_rss_mib"]["median"],
            "http_cold_s3": cold["handler_s3"]["peak_rss_mib"]["median"],
            "http_cold_traced": cold["handler_local_traced"]["peak_rss_mib"]["median"],
            "http_warm": data["warm"]["handler_peak_rss_mib"],
            "queue_20k": data["throughput"]["handler_peak_rss_mib"],
            "tensorflow_cold": cold["tensorflow"]["peak_rss_mib"]["median"],
            "tensorflow_warm": data["keras"]["peak_rss_mib"],
            "bare_cold": cold["bare"]["peak_rss_mib"]["median"],
        }
        if "explain" in data:
            s["explain"] = data["explain"]

    summary["bundle"] = bundle_summary(results["bundle"])
    summary["targets"] = targets(summary)
    return summary


def ratio(numerator: list[float], denominator: list[float], paired: bool = True) -> dict[str, Any]:
    value = statistics.median(numerator) / statistics.median(denominator)
    result: dict[str, Any] = {"value": value}
    if paired and len(numerator) == len(denominator):
        each = [n / d for n, d in zip(numerator, denominator, strict=True)]
        result.update(min=min(each), max=max(each))
    return result


def bundle_summary(sizes: dict[str, Any]) -> dict[str, Any]:
    ours = sizes["ours"]
    result: dict[str, Any] = {
        "ours_unzipped": ours["http_unzipped_bytes"],
        "ours_zipped": ours["http_zipped_bytes"],
        "layer_unzipped": ours["SharedLayer"]["unzipped_bytes"],
        "largest": ours["largest"],
    }
    tf = sizes.get("tensorflow")
    if tf:
        rest = ours["layer_without_numpy_tflite"]
        function = ours["PredictFunction"]
        for key in ("unzipped", "zipped"):
            total = tf[f"{key}_bytes"] + rest[f"{key}_bytes"] + function[f"{key}_bytes"]
            result[f"tensorflow_{key}"] = total
            result[f"tensorflow_{key}_ratio"] = total / result[f"ours_{key}"]
    return result


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for preset, s in summary["presets"].items():
        cold = s["cold"]
        checks[f"{preset}: cold start, local store <= TF/10"] = _check(
            cold["handler_local"]["tf_ratio"]["value"], TARGETS["cold_local"], "x faster", True
        )
        checks[f"{preset}: cold start, S3 store <= TF/6"] = _check(
            cold["handler_s3"]["tf_ratio"]["value"], TARGETS["cold_s3"], "x faster", True
        )
        if preset == "seed":
            checks["seed: warm p50 <= 1 ms (review texts)"] = _check(
                s["warm"]["handler/review"]["p50_ms"]["median"],
                TARGETS["warm_p50_ms_seed"],
                "ms",
                False,
            )
        for texts in ("review", "short"):
            checks[f"{preset}: handler overhead <= 2x bare ({texts} texts)"] = _check(
                s["warm"][f"handler/{texts}"]["overhead_over_bare"]["value"],
                TARGETS["handler_overhead"],
                "x bare",
                False,
            )
        checks[f"{preset}: queue throughput >= 70% of bare"] = _check(
            s["throughput"]["ratio"]["value"], TARGETS["throughput"], "of bare", True
        )
        handler_rss = max(
            s["rss_mib"][k]
            for k in (
                "http_cold_local",
                "http_cold_s3",
                "http_cold_traced",
                "http_warm",
                "queue_20k",
            )
        )
        checks[f"{preset}: handler peak RSS <= 120 MiB"] = _check(
            handler_rss, TARGETS["rss_mib"], "MiB", False
        )
        if "explain" in s:
            explained = s["explain"]
            checks[f"{preset}: top-20% deletion >= 3x random (explanations)"] = _check(
                explained["comprehensiveness"]["ratio"] or 0.0,
                TARGETS["faithfulness"],
                "x random",
                True,
            )
            checks[f"{preset}: explaining 100 tokens adds <= 20 ms"] = _check(
                explained["latency_100_tokens"]["added_ms"],
                TARGETS["explain_added_ms"],
                "ms",
                False,
            )
    checks["bundle (layer + HTTP function) <= 50 MB unzipped"] = _check(
        summary["bundle"]["ours_unzipped"] / MB, TARGETS["bundle_mb"], "MB", False
    )
    return checks


def _check(value: float, limit: float, unit: str, at_least: bool) -> dict[str, Any]:
    met = value >= limit if at_least else value <= limit
    return {"value": value, "limit": limit, "unit": unit, "met": met}


# ------------------------------------------------------------------------------- table
def _ms(value: dict[str, float], scale: float = 1000) -> str:
    return (
        f"{value['median'] * scale:,.0f} [{value['min'] * scale:,.0f}-{value['max'] * scale:,.0f}]"
    )


def _fine(value: dict[str, float]) -> str:
    return f"{value['median']:.3f} [{value['min']:.3f}-{value['max']:.3f}]"


def _ratio(value: dict[str, Any], digits: int = 1) -> str:
    text = f"{value['value']:.{digits}f}x"
    if "min" in value:
        text += f" [{value['min']:.{digits}f}-{value['max']:.{digits}f}]"
    return text


def table(results: dict[str, Any]) -> str:
    summary = results["summary"]
    settings = results["settings"]
    lines = [
        f"maas bench - {results['created_at']} - {results['machine']['cpu']}, "
        f"{results['machine']['cores']} cores, Python {results['machine']['python']}",
        f"command: {results['command']}",
        f"functions run from: {results['interpreter']} ({results['build_dir']})",
        "figures: median [min-max] over repeats; ratios from this run's medians "
        "[min-max of per-repeat ratios]",
    ]
    for preset, s in summary["presets"].items():
        facts = results["presets"][preset]["model"]
        buckets = facts.get("buckets")
        lines += [
            "",
            f"## {preset} preset: input {facts['input']['shape']}, "
            f"tflite {facts['tflite_bytes']:,} B, keras {facts['keras_bytes']:,} B, "
            + (
                f"buckets {[b['length'] for b in buckets['models']]} ({buckets['kind']})"
                if buckets
                else "no buckets"
            ),
            "",
            f"### Cold start, ms (new process, spawn to first answer; "
            f"{settings['cold_repeats']} each)",
            "",
            "| process | total | vs TF | peak RSS MiB | breakdown (medians, ms) |",
            "|---|---:|---:|---:|---|",
        ]
        for variant, label in COLD_VARIANTS:
            c = s["cold"][variant]
            parts = ", ".join(
                f"{name} {c[key]['median'] * 1000:.0f}"
                for key, name in COLD_PARTS
                if key in c
                and (c[key]["median"] >= 0.0005 or key == "client_s")
                and (key != "client_s" or variant == "handler_s3")
            )
            versus = "1x" if variant == "tensorflow" else f"1/{_ratio(c['tf_ratio'])}"
            lines.append(
                f"| {label} | {_ms(c['total_s'])} | {versus} | "
                f"{c['peak_rss_mib']['median']:.0f} | {parts} |"
            )
        w = s["warm"]
        lengths = results["presets"][preset]["warm"]["read_lengths"]
        tokens = results["presets"][preset]["warm"]["tokens"]
        lines += [
            "",
            f"### Warm latency, single text, ms ({settings['warm_rounds']} rounds of "
            f"{settings['warm_requests']} requests; Keras {settings['keras_requests']} calls, "
            "predict a tenth of that)",
            "",
            "texts: "
            + "; ".join(
                f"{name} ({len(tokens[name])} real reviews, median {_median(tokens[name])} "
                f"tokens, read at lengths {_counts(lengths[name])})"
                for name in ("review", "short")
            ),
            "bare = the maas tokenizer + one tflite-runtime invoke of the full-length model",
            "",
            "| texts | HTTP handler p50 | p99 | Classifier.predict p50 | bare p50 "
            "| invoke only p50 | handler / bare | overhead / bare | Keras model(x) p50 "
            "| Keras predict p50 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for texts in ("review", "short"):
            h = w[f"handler/{texts}"]
            lines.append(
                f"| {texts} | {_fine(h['p50_ms'])} | {_fine(h['p99_ms'])} | "
                f"{_fine(w[f'classifier/{texts}']['p50_ms'])} | "
                f"{_fine(w[f'bare/{texts}']['p50_ms'])} | "
                f"{_fine(w[f'invoke/{texts}']['p50_ms'])} | {_ratio(h['over_bare'], 2)} | "
                f"{_ratio(h['overhead_over_bare'], 2)} | "
                f"{w[f'keras_call/{texts}']['p50_ms']['median']:.2f} "
                f"({_ratio(w[f'keras_call/{texts}']['over_handler'])}) | "
                f"{w[f'keras_predict/{texts}']['p50_ms']['median']:.1f} "
                f"({_ratio(w[f'keras_predict/{texts}']['over_handler'])}) |"
            )
        t = s["throughput"]
        lines += [
            "",
            f"### Batch throughput, texts per CPU-second ({settings['throughput_texts']:,} "
            f"texts, {settings['throughput_rounds']} rounds)",
            "",
            f"queue handler {_tps(t['queue_handler'])}, Classifier.predict "
            f"{_tps(t['classifier'])}, bare {_tps(t['bare'])}; queue handler / bare "
            f"{_ratio(t['ratio'], 2)}",
            "",
            "peak RSS, MiB: "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in s["rss_mib"].items()),
        ]
        explained = results["presets"][preset].get("explain")
        if explained:
            c, lat = explained["comprehensiveness"], explained["latency_100_tokens"]
            lines += [
                "",
                f"### Explanations ({explained['method']}, at most {explained['max_invokes']} "
                "invokes a text)",
                "",
                f"faithfulness on {c['texts']} test texts: deleting the top "
                f"{c['fraction']:.0%} tokens by attribution lowers the label's probability by "
                f"{c['top_drop']:.3f}, {c['fraction']:.0%} random tokens by {c['random_drop']:.3f} "
                f"(mean of {c['random_draws']} draws): {c['ratio']}x; invokes per text median "
                f"{c['invokes_median']}, max {c['invokes_max']}",
                f"latency, one text of {lat['tokens']} tokens ({lat['tokens_read']} read, "
                f"{lat['invokes']} invokes): plain {lat['plain_ms']:.2f} ms, explained "
                f"{lat['explained_ms']:.2f} ms: +{lat['added_ms']:.2f} ms "
                f"(median of {lat['repeats']})",
            ]
    b = summary["bundle"]
    lines += [
        "",
        "## Bundle (sam build: layer + HTTP function)",
        "",
        f"ours: {b['ours_unzipped'] / MB:.1f} MB unzipped, {b['ours_zipped'] / MB:.1f} MB zipped; "
        "largest: " + ", ".join(f"{e['name']} {e['bytes'] / MB:.1f}" for e in b["largest"][:6]),
    ]
    if "tensorflow_unzipped" in b:
        lines.append(
            f"TensorFlow baseline: {b['tensorflow_unzipped'] / MB:,.0f} MB unzipped "
            f"({b['tensorflow_unzipped_ratio']:.0f}x), {b['tensorflow_zipped'] / MB:,.0f} MB "
            f"zipped ({b['tensorflow_zipped_ratio']:.0f}x)"
        )
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|:---:|"]
    for name, check in summary["targets"].items():
        value = check["value"]
        shown = f"{value:.0%}" if check["unit"] == "of bare" else f"{value:.2f} {check['unit']}"
        lines.append(f"| {name} | {shown} | {'yes' if check['met'] else 'NO'} |")
    lines += [
        "",
        "Notes: X-Ray is off except in the 'X-Ray on' row (no daemon here; segments go to "
        "127.0.0.1:2000 and are dropped). The TensorFlow bundle is tensorflow-cpu and its "
        "dependency closure as installed in .venv-train (less boto3 & co.) plus the part of our "
        "layer TensorFlow does not replace. 'bare' is the floor any TFLite server pays: the "
        "same tokenizer and one invoke of the artifact's full-length model.",
        f"(run took {results['seconds']:.0f} s; details: {results['work_dir']}.json)",
    ]
    return "\n".join(lines)


def _median(values: list[int]) -> int:
    return int(statistics.median(values))


def _counts(values: list[int]) -> str:
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return ", ".join(f"{length}: {n}" for length, n in sorted(counts.items()))


def _tps(value: dict[str, Any]) -> str:
    v = value["texts_per_cpu_s"]
    return f"{v['median']:,.0f} [{v['min']:,.0f}-{v['max']:,.0f}]"
