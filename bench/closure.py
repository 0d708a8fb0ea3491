"""What a bundle of some distributions would carry: them and everything they require, as
installed in the environment that runs this (stdlib and `packaging` only, so that it runs in
each of the project's environments).

    ENV/bin/python bench/closure.py ROOT[,ROOT...]   ->   {"versions": {...}, "files": [...]}

Used by bench/bundle.py (the TensorFlow bundle, in .venv-train) and bench/peer_child.py (each
peer's footprint, in its own environment).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import sys
from collections.abc import Iterable

from packaging.requirements import Requirement

# shared/Makefile's RUNTIME_PROVIDED: the Lambda Python runtime has them, no bundle carries them.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python-dateutil",
    "six",
)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(
    roots: Iterable[str], skip: Iterable[str] = RUNTIME_PROVIDED
) -> tuple[dict[str, str], list[str]]:
    """The installed distributions among `roots` and their requirements (markers evaluated
    here, no extras), without `skip`: their versions, and their files' paths."""
    skipped = {_normalized(name) for name in skip}
    versions: dict[str, str] = {}
    files: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = _normalized(name)
        if key in versions or key in skipped:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        versions[key] = dist.version
        files.update(str(f.locate()) for f in dist.files or [])
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return versions, sorted(files)


if __name__ == "__main__":
    versions, files = closure(sys.argv[1].split(","))
    print(json.dumps({"versions": versions, "files": files}))
