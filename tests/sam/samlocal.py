"""Run the built functions in the real Lambda runtime with SAM CLI, against moto on 127.0.0.1.

Used by the tests in this folder, and runnable for the same set-up by hand (README, "Test with
SAM locally")::

    .venv/bin/python tests/sam/samlocal.py template --out .aws-sam/local/template.yaml

Why a derived template: `sam local` passes a function only the environment variables its
template declares (`--env-vars` can override them, never add). The endpoint of the local AWS
(`AWS_ENDPOINT_URL`) must not be in the deployed template, so the tests run a copy of the
*built* template (.aws-sam/build/template.yaml) that only declares a few more names; their
values come from the `--env-vars` file, like every other local value. Everything else - code,
layer, handlers, memory, timeouts - is the build as `sam build` made it.

Why infra/docker/sam-hostnet: SAM CLI 1.170 ignores `--docker-network host`, and our Docker
engine has no bridge network (infra/NOTES.md, "Surprises").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD_DIR / "template.yaml"
TOOLS = REPO / ".venv-tools" / "bin"
SAM = TOOLS / "sam"
SAM_HOSTNET = REPO / "infra" / "docker" / "sam-hostnet"
EVENTS = REPO / "events"
BASE_IMAGE = "public.ecr.aws/lambda/python:3.11-x86_64"

# The error table of functions/http/app.py and maas/schemas.py for the committed bad-input
# events (tests/test_http.py checks the same table against the handler called directly).
BAD_INPUT_EVENTS = [
    ("bad-malformed-json", 400, "invalid_json"),
    ("bad-empty-text", 422, "empty_text"),
    ("bad-too-many-texts", 422, "too_many_texts"),
    ("bad-text-too-long", 422, "text_too_long"),
    ("bad-wrong-type", 422, "wrong_type"),
    ("bad-unknown-model", 404, "model_not_found"),
]

# Declared (empty) in the local copy of the template so that `--env-vars` can set them.
LOCAL_ONLY_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "POWERTOOLS_TRACE_DISABLED",
    "POWERTOOLS_METRICS_DISABLED",
)

# Source folder -> the folder `sam build` made from it (template.yaml: CodeUri / ContentUri).
BUILT_FROM = {
    "functions/http": "PredictFunction",
    "functions/queue": "BatchFunction",
}
LAYER_LIST = REPO / "shared" / "layer.txt"
LAYER_PYTHON = BUILD_DIR / "SharedLayer" / "python"
# Inputs of the build that are transformed, not copied: compared by modification time.
BUILT_AFTER = ("template.yaml", "shared/requirements.txt", "shared/Makefile", "shared/layer.txt")


def layer_modules() -> list[str]:
    """The maas modules the layer ships (shared/layer.txt), e.g. 'maas/core/classifier.py'."""
    lines = LAYER_LIST.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# ------------------------------------------------------------------------------ preconditions
def missing_build() -> str | None:
    """Why there is no usable `sam build` output, or None."""
    if not SAM.exists():
        return f"no SAM CLI at {SAM.relative_to(REPO)}: run `make install`"
    if not BUILT_TEMPLATE.exists():
        return "nothing built in .aws-sam/build: run `make sam-build`"
    if stale := stale_build():
        return f"the build in .aws-sam/build is out of date ({stale}): run `make sam-build`"
    return None


def missing_runtime() -> str | None:
    """Why `sam local` cannot run here (engine, base image, build), or None."""
    if shutil.which("docker") is None:
        return "no docker client on PATH: run `make docker-up`"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer `docker info`: run `make docker-up`"
    if info.returncode != 0:
        return "no Docker engine is running: run `make docker-up`"
    image = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if image.returncode != 0:
        return (
            f"the Lambda base image {BASE_IMAGE} is missing (offline: `make docker-up` builds"
            " the test fixture; online: `docker pull` it)"
        )
    return missing_build()


def stale_build() -> str | None:
    """The first source file whose built copy is missing or different, if any."""
    built_at = BUILT_TEMPLATE.stat().st_mtime
    for name in BUILT_AFTER:
        if (REPO / name).stat().st_mtime > built_at:
            return f"{name} changed after the last build"
    pairs = [
        (path, BUILD_DIR / built / path.relative_to(REPO / source))
        for source, built in BUILT_FROM.items()
        for path in sorted((REPO / source).rglob("*.py"))
    ]
    pairs += [(REPO / "shared" / module, LAYER_PYTHON / module) for module in layer_modules()]
    for path, copy in pairs:
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            return f"{path.relative_to(REPO)} differs from {copy.relative_to(REPO)}"
    return None


# ------------------------------------------------------------------- template and environment
def load_built_template() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(BUILT_TEMPLATE.read_text(encoding="utf-8"))
    return doc


def write_local_template(out: Path, api_only: bool = False) -> Path:
    """The built template, runnable from anywhere (absolute code paths), declaring
    LOCAL_ONLY_VARIABLES for every function. `api_only` keeps only the functions behind the
    API: `start-api --warm-containers EAGER` starts containers for several functions in
    parallel threads, and SAM CLI 1.170 can then lose track of one (its lazily created
    runtime is not thread-safe), which stays running after start-api exits."""
    doc = load_built_template()
    if api_only:
        resources = doc["Resources"]
        behind_api = {
            resource["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]
            for resource in resources.values()
            if resource["Type"] == "AWS::ApiGatewayV2::Integration"
        }
        for name, resource in list(resources.items()):
            if resource["Type"] == "AWS::Serverless::Function" and name not in behind_api:
                del resources[name]
        doc.pop("Outputs", None)  # they name every function; nothing local reads them
    # sam local enforces neither IAM nor JWT authorization nor CORS, and cannot read the
    # conditions the template chooses them with: the local API is unauthenticated, as the
    # README says, and everything else about the routes is the template's.
    for name, resource in list(doc["Resources"].items()):
        if resource["Type"] == "AWS::ApiGatewayV2::Authorizer":
            del doc["Resources"][name]
        elif resource["Type"] == "AWS::ApiGatewayV2::Route":
            resource["Properties"].pop("AuthorizerId", None)
            resource["Properties"]["AuthorizationType"] = "NONE"
        elif resource["Type"] == "AWS::ApiGatewayV2::Api":
            resource["Properties"].pop("CorsConfiguration", None)
    env = doc.setdefault("Globals", {}).setdefault("Function", {}).setdefault("Environment", {})
    variables = env.setdefault("Variables", {})
    for name in LOCAL_ONLY_VARIABLES:
        variables.setdefault(name, "")
    for resource in doc["Resources"].values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and "://" not in properties[key]:
                properties[key] = str((BUILD_DIR / properties[key]).resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def template_variables(buckets: Mapping[str, str]) -> dict[str, str]:
    """The template's own `Fn::Sub` environment values (MAAS_STORE, MAAS_RESULTS) with the
    bucket resources replaced by local bucket names, e.g. {"ModelBucket": "maas-models"}: the
    functions then read and write exactly where the deployed stack would."""
    doc = load_built_template()
    scopes = [doc.get("Globals", {}).get("Function", {})]
    scopes += [r.get("Properties", {}) for r in doc["Resources"].values()]
    resolved: dict[str, str] = {}
    for scope in scopes:
        for name, value in ((scope.get("Environment") or {}).get("Variables") or {}).items():
            if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
                text = value["Fn::Sub"]
                refs = set(re.findall(r"\$\{([^}]+)\}", text))
                if refs and refs <= set(buckets):
                    resolved[name] = re.sub(r"\$\{([^}]+)\}", lambda m: buckets[m[1]], text)
    return resolved


def env_vars(
    endpoint: str, buckets: Mapping[str, str], signing_key: str, model: str = "reviews"
) -> dict[str, Any]:
    """An `--env-vars` document ({"Parameters": ...} applies to every function).
    `signing_key`: the template's MAAS_SIGNING_KEY (kms:<the key on moto>)."""
    return {
        "Parameters": {
            **template_variables(buckets),
            "MAAS_SIGNING_KEY": signing_key,
            "MAAS_MODEL_NAME": model,
            "MAAS_MODEL_ALIAS": "production",
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    }


def sam_environment() -> dict[str, str]:
    """The environment of a `sam` process: no telemetry, the tools' Python for the wrapper,
    fake credentials (SAM hands the shell's credentials to the function)."""
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", SAM_PYTHON=str(TOOLS / "python"))
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def local_args(template: Path, env_file: Path) -> list[str]:
    return [
        "-t",
        str(template),
        "--env-vars",
        str(env_file),
        "--skip-pull-image",
        "--docker-network",
        "host",
        "--container-host-interface",
        "127.0.0.1",
    ]


@dataclass(frozen=True)
class LocalStack:
    """What the functions run against locally: moto on 127.0.0.1 and the files for `sam`."""

    endpoint: str
    models_bucket: str
    results_bucket: str
    template: Path
    env_file: Path
    env: dict[str, str]


# ----------------------------------------------------------------------------------- REPORT
_REPORT = re.compile(r"^REPORT RequestId: \S+.*$", re.MULTILINE)
_FIELD = re.compile(
    r"(Init Duration|Duration|Billed Duration|Memory Size|Max Memory Used): ([\d.]+ \w+)"
)


@dataclass
class Report:
    """One REPORT line. From the Runtime Interface Emulator, not from Lambda: Max Memory Used
    always equals Memory Size and Init Duration is the emulator's own start (~0.05 ms); the
    function's cold start (imports, model download and load) is in the first Duration."""

    label: str
    line: str
    wall_s: float | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        figures = "  ".join(
            f"{name} {self.fields[name]}"
            for name in ("Init Duration", "Duration", "Max Memory Used")
            if name in self.fields
        )
        wall = f"  (wall {self.wall_s:.1f} s)" if self.wall_s is not None else ""
        return f"{self.label:<44} {figures}{wall}"


REPORTS: list[Report] = []  # printed by tests/sam/conftest.py at the end of the session


def reports_in(text: str, label: str, wall_s: float | None = None) -> list[Report]:
    found = []
    for line in _REPORT.findall(text):
        found.append(Report(label, line.strip(), wall_s, dict(_FIELD.findall(line))))
    return found


# ------------------------------------------------------------------------------ sam local invoke
@dataclass
class Invocation:
    payload: Any
    stderr: str
    reports: list[Report]
    wall_s: float


def invoke(
    function: str, event: Path, template: Path, env_file: Path, timeout: float = 120
) -> Invocation:
    """`sam local invoke FUNCTION -e EVENT` in a fresh container; the function's result."""
    label = f"invoke {function} {event.parent.name}/{event.stem}"
    started = time.perf_counter()
    done = subprocess.run(
        [
            str(SAM_HOSTNET),
            "local",
            "invoke",
            function,
            "-e",
            str(event),
            *local_args(template, env_file),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=sam_environment(),
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise AssertionError(f"{label} exited {done.returncode}:\n{done.stderr[-4000:]}")
    reports = reports_in(done.stderr, label, wall)
    REPORTS.extend(reports)
    try:
        payload = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"{label} printed no JSON result:\n{done.stdout}\n{done.stderr[-4000:]}"
        ) from None
    return Invocation(payload, done.stderr, reports, wall)


# --------------------------------------------------------------------------- sam local start-api
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def containers() -> set[str]:
    """Ids of the Lambda containers SAM CLI runs (it labels them), whoever started them."""
    out = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", "label=sam.cli.container.type"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


@dataclass
class Api:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def start_api(
    template: Path, env_file: Path, log: Path, ready_timeout: float = 120
) -> Iterator[Api]:
    """`sam local start-api` on 127.0.0.1 with eagerly started warm containers; stopped with
    SIGTERM (SAM then removes its containers) and checked for leftovers."""
    before = containers()
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(SAM_HOSTNET),
                "local",
                "start-api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--warm-containers",
                "EAGER",
                *local_args(template, env_file),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=sam_environment(),
            cwd=REPO,
            start_new_session=True,  # its own process group: nothing outlives the teardown
        )
    api = Api(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_serving(api, ready_timeout)
        yield api
    finally:
        leftovers = stop_api(api, before)
        # One warm container serves every request: the first REPORT holds its cold start.
        served = reports_in(log.read_text(errors="replace"), "start-api PredictFunction")
        for number, report in enumerate(served, 1):
            report.label += f" request {number}" + (" (cold)" if number == 1 else "")
        REPORTS.extend(served)
    if leftovers:
        raise AssertionError(f"start-api left containers behind (removed now): {sorted(leftovers)}")


def _wait_until_serving(api: Api, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise AssertionError(
                f"sam local start-api exited {api.process.returncode}:\n{_tail(api.log)}"
            )
        try:
            with urllib.request.urlopen(f"{api.url}/health", timeout=30) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(
        f"sam local start-api did not serve /health within {timeout:.0f} s:\n{_tail(api.log)}"
    )


def stop_api(api: Api, before: set[str]) -> set[str]:
    """Stop start-api; the ids of containers it left behind (they are removed)."""
    if api.process.poll() is None:
        api.process.send_signal(signal.SIGTERM)
        try:
            api.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(api.process.pid, signal.SIGKILL)
            api.process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # helpers in its group, if any survived
        os.killpg(api.process.pid, signal.SIGKILL)
    # SAM stops its warm containers and Docker removes them; on a busy machine a removal can
    # still be in progress when SAM has exited.
    deadline = time.monotonic() + 30
    while (leftovers := containers() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    if leftovers:
        subprocess.run(["docker", "rm", "-f", *leftovers], capture_output=True)
    return leftovers


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def dangling_images() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "-q", "--no-trunc", "--filter", "dangling=true"],
        capture_output=True,
        text=True,
    )
    return set(out.stdout.split())


# ------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    template = commands.add_parser("template", help="write the local copy of the built template")
    template.add_argument("--out", type=Path, default=REPO / ".aws-sam" / "local" / "template.yaml")
    env = commands.add_parser("env", help="print an --env-vars file for moto on ENDPOINT")
    env.add_argument("--endpoint", default="http://127.0.0.1:5000")
    env.add_argument("--model-bucket", default="maas-models")
    env.add_argument("--results-bucket", default="maas-results")
    env.add_argument(
        "--signing-key", required=True, help="kms:<key ARN> the versions are signed with"
    )
    args = parser.parse_args(argv)
    if args.command == "template":
        print(write_local_template(args.out))
    else:
        buckets = {"ModelBucket": args.model_bucket, "ResultsBucket": args.results_bucket}
        print(json.dumps(env_vars(args.endpoint, buckets, args.signing_key), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
