"""Bundle sizes for bench/harness.py: the Lambda bundle as `sam build` makes it, and what a
TensorFlow baseline would have to ship instead.

- ours: `sam build` into a directory of the run; the layer (SharedLayer) + the function, every
  regular file counted (unzipped) and zipped in process (zipfile, deflate, level 6: what a
  deployment package upload is).
- TensorFlow: the installed files (each distribution's RECORD) of `tensorflow-cpu` and its
  whole dependency closure in .venv-train (markers evaluated, no extras), less what the Lambda
  runtime provides (boto3 & co.), plus the part of our layer TensorFlow would not replace
  (Powertools, pydantic, maas: our layer without numpy and tflite-runtime). The same zip.
  Zipping TensorFlow takes a minute, so its figures are cached by the installed versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAM = REPO / ".venv-tools" / "bin" / "sam"
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
# What tflite-runtime replaces (TensorFlow brings its own numpy).
REPLACED_TOP_LEVEL = ("numpy", "numpy.libs", "tflite_runtime")
ZIP_LEVEL = 6


def sam_build(build_dir: Path, log: Path) -> float:
    """`sam build` of template.yaml into build_dir; returns the seconds it took."""
    started = time.perf_counter()
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    # sam builds the LiteRT layer with python3.13 from PATH: pyenv's where it has one (its
    # shim on PATH answers "command not found" unless 3.13 is selected), as the Makefile does
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"))
    found = str(pyenv[0]) if pyenv else shutil.which("python3.13")
    if found:
        env["PATH"] = f"{Path(found).parent}{os.pathsep}{env.get('PATH', '')}"
    with log.open("w", encoding="utf-8") as handle:
        subprocess.run(
            [str(SAM), "build", "--build-dir", str(build_dir)],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=900,
        )
    return time.perf_counter() - started


def files_under(*roots: Path, skip_top: Iterable[str] = ()) -> list[tuple[Path, str]]:
    """(path, name in the zip) of every regular file under the roots."""
    skipped = set(skip_top)
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if relative.parts[0] in skipped or _is_dist_info_of(relative.parts[0], skipped):
                continue
            if path.is_file() and not path.is_symlink():
                found.append((path, str(Path(root.name) / relative)))
    return found


def _is_dist_info_of(top: str, names: set[str]) -> bool:
    return top.endswith(".dist-info") and top.split("-")[0] in {n.replace("-", "_") for n in names}


def measure(files: list[tuple[Path, str]], work: Path) -> dict[str, int]:
    """Unzipped bytes, and the size of a deflate zip of them (written to a temporary file)."""
    unzipped = sum(path.stat().st_size for path, _ in files)
    with tempfile.NamedTemporaryFile(dir=work, suffix=".zip") as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as z:
            for path, name in files:
                z.write(path, name)
        zipped = Path(handle.name).stat().st_size
    return {"files": len(files), "unzipped_bytes": unzipped, "zipped_bytes": zipped}


def ours(build_dir: Path, work: Path) -> dict[str, Any]:
    layer = build_dir / "SharedLayer"
    result: dict[str, Any] = {}
    for function in ("PredictFunction", "BatchFunction"):
        result[function] = measure(files_under(build_dir / function), work)
    result["SharedLayer"] = measure(files_under(layer), work)
    # the layer without what TensorFlow would replace: what a TF bundle still needs
    result["layer_without_numpy_tflite"] = measure(
        files_under(layer / "python", skip_top=REPLACED_TOP_LEVEL), work
    )
    result["largest"] = _largest(layer / "python")
    for key in ("unzipped_bytes", "zipped_bytes"):
        result[f"http_{key}"] = result["SharedLayer"][key] + result["PredictFunction"][key]
    return result


def _largest(root: Path, top: int = 8) -> list[dict[str, Any]]:
    sizes = []
    for entry in root.iterdir():
        paths = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes.append((sum(p.stat().st_size for p in paths), entry.name))
    return [{"name": name, "bytes": size} for size, name in sorted(sizes, reverse=True)[:top]]


def tensorflow_closure(cache: Path, work: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(TRAIN_PYTHON), str(Path(__file__).with_name("closure.py")), "tensorflow-cpu"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    closure = json.loads(done.stdout)
    key = "-".join(f"{name}{version}" for name, version in sorted(closure["versions"].items()))
    cached = cache / f"tensorflow-bundle-{_digest(key)}.json"
    if cached.is_file():
        return dict(json.loads(cached.read_text(encoding="utf-8")), cached=True)
    files = [(Path(path), path.lstrip("/")) for path in closure["files"]]
    started = time.perf_counter()
    result: dict[str, Any] = measure(files, work)
    result.update(
        distributions=closure["versions"], zip_seconds=round(time.perf_counter() - started, 1)
    )
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return dict(result, cached=False)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]
