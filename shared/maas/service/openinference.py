"""The Open Inference Protocol (KServe V2) on the HTTP function: the shapes and the tensors.

Teams that serve models with KServe, Triton, MLServer or Seldon call `POST
/v2/models/{name}/infer`; the HTTP function answers it (and the health and metadata routes)
beside its own `/models/{name}/predict`, with the same validation, limits, logs and metrics.

How maas maps onto the protocol:
- a model name is a maas reference: `reviews` (the function's alias, else the latest
  version), `reviews@production` or `reviews:3`; `/versions/{v}` takes a version number or an
  alias name (`/v2/models/reviews/versions/3`, `/v2/models/reviews/versions/staging`);
  `model_version` in every answer is the version that answered (a canary's, when it did);
- one input, `text`: BYTES, shape `[N]` or `[N, 1]`, UTF-8 texts;
- outputs: `label` (BYTES `[N]`), `score` (FP32 `[N]`), `probabilities` (FP32 `[N, L]`, in
  the order of the `labels` parameter) and, when explained, `explanation` (BYTES `[N]`, one
  JSON document a text); without `outputs` in the request, all of them;
- request parameters: `explain` (bool; requesting the `explanation` output also explains),
  `binary_data_output` (bool); output parameters: `binary_data` (bool), `classification`
  (K, on `probabilities`: the top K as Triton's classification extension writes them,
  `"score:index:label"`; tritonclient's `class_count`);
- the binary tensor data extension both ways (`Inference-Header-Content-Length`);
- errors are the protocol's `{"error": "<message>"}` with our stable code in the
  `X-Maas-Error-Code` header; a bad inference request is a 400.

The binary extension is undone before routing (`unpack_binary`): a binary request becomes the
JSON request it encodes, so one validated route serves both.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from maas.core import jsontext
from maas.core.classifier import Classifier, Prediction
from maas.core.limits import MAX_ID_CHARS
from maas.errors import ErrorCode, InvalidInput, InvalidJson, InvalidModelRef

BINARY_HEADER = "inference-header-content-length"
ERROR_CODE_HEADER = "X-Maas-Error-Code"
INPUT = "text"
LABEL, SCORE, PROBABILITIES, EXPLANATION = "label", "score", "probabilities", "explanation"
OUTPUTS = (LABEL, SCORE, PROBABILITIES, EXPLANATION)
PLATFORM = "tflite"
EXTENSIONS = ("binary_tensor_data", "classification")
MAX_DIMS = 8
MAX_NAME_CHARS = 64
_LENGTH = struct.Struct("<I")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code=ErrorCode.INVALID_TENSOR)


# ------------------------------------------------------------------------------ the shapes
Parameters = Annotated[
    dict[str, Any],
    Field(description="Free-form parameters; the ones maas reads are documented on the route."),
]


class V2RequestInput(BaseModel):
    # The document names the one input and datatype maas takes; other values are answered
    # with a 400 that says what is wrong (not a generic "must be one of").
    name: str = Field(
        max_length=MAX_NAME_CHARS, json_schema_extra={"enum": [INPUT]}, description=f"`{INPUT}`"
    )
    shape: list[StrictInt] = Field(
        max_length=MAX_DIMS, description="`[N]` or `[N, 1]`: N texts (N = the length of data)"
    )
    datatype: str = Field(max_length=MAX_NAME_CHARS, json_schema_extra={"enum": ["BYTES"]})
    parameters: Parameters | None = None
    data: list[Any] = Field(repr=False, description="The texts, flat or nested by the shape.")


class V2RequestOutput(BaseModel):
    name: str = Field(max_length=MAX_NAME_CHARS, description=", ".join(OUTPUTS))
    parameters: Parameters | None = None


def _infer_examples(schema: dict[str, Any]) -> None:
    schema["examples"] = [
        {
            "inputs": [
                {"name": INPUT, "shape": [2], "datatype": "BYTES", "data": ["很好", "太差了"]}
            ]
        },
        {
            "id": "req-1",
            "parameters": {"explain": True},
            "inputs": [{"name": INPUT, "shape": [1], "datatype": "BYTES", "data": ["很好"]}],
            "outputs": [{"name": LABEL}, {"name": EXPLANATION}],
        },
    ]


class V2InferRequest(BaseModel):
    """The protocol's inference request (JSON; a binary one is decoded to this first)."""

    model_config = ConfigDict(json_schema_extra=_infer_examples)

    id: str | None = Field(default=None, max_length=MAX_ID_CHARS, description="Echoed back.")
    parameters: Parameters | None = None
    inputs: list[V2RequestInput] = Field(
        min_length=1, max_length=MAX_DIMS, json_schema_extra={"maxItems": 1}
    )
    outputs: list[V2RequestOutput] | None = Field(default=None, max_length=2 * len(OUTPUTS))


class V2ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = Field(default=None, description="Absent when sent as binary.")


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str = Field(description="The version that answered.")
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[V2ResponseOutput]


class V2Error(BaseModel):
    error: str = Field(description="What was wrong (the stable code is in X-Maas-Error-Code).")


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="Every published version, oldest first.")
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    properties: dict[str, str] = Field(
        description="version (the one this name resolves to), labels (a JSON array: the "
        "columns of probabilities), runtime, task"
    )


class V2Liveness(BaseModel):
    live: bool


class V2Readiness(BaseModel):
    ready: bool
    name: str | None = None


# --------------------------------------------------------------------------- model names
def reference(name: str, version: str | None = None) -> str:
    """The maas reference a protocol model name and optional version mean."""
    if version is None:
        return name
    if "@" in name or ":" in name:
        raise InvalidModelRef(
            f"{name!r} names its alias or version already; leave out /versions/{version}"
        )
    return f"{name}:{version}" if version.isdigit() else f"{name}@{version}"


def model_metadata(classifier: Classifier, versions: Sequence[str]) -> V2ModelMetadata:
    width = len(classifier.labels)
    return V2ModelMetadata(
        name=classifier.name,
        versions=list(versions),
        platform=PLATFORM,
        inputs=[V2TensorMetadata(name=INPUT, datatype="BYTES", shape=[-1])],
        outputs=[
            V2TensorMetadata(name=LABEL, datatype="BYTES", shape=[-1]),
            V2TensorMetadata(name=SCORE, datatype="FP32", shape=[-1]),
            V2TensorMetadata(name=PROBABILITIES, datatype="FP32", shape=[-1, width]),
            V2TensorMetadata(name=EXPLANATION, datatype="BYTES", shape=[-1]),
        ],
        properties={
            "version": classifier.version,
            "labels": json.dumps(classifier.labels, ensure_ascii=False),
            "runtime": classifier.runtime,
            "task": str(classifier.manifest.task),
        },
    )


# ---------------------------------------------------------------------- binary extension
def _bytes_elements(raw: bytes, where: str) -> list[str]:
    """A BYTES tensor's binary form: each element a 4-byte little-endian length, then it."""
    texts: list[str] = []
    position = 0
    while position < len(raw):
        if position + _LENGTH.size > len(raw):
            raise _invalid(f"{where}: its binary data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(raw, position)
        position += _LENGTH.size
        if position + length > len(raw):
            raise _invalid(f"{where}: element {len(texts)} is longer than its binary data")
        try:
            texts.append(raw[position : position + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _invalid(f"{where}: element {len(texts)} is not UTF-8 text") from None
        position += length
    return texts


def _bytes_binary(values: Sequence[str]) -> bytes:
    parts = []
    for value in values:
        encoded = value.encode("utf-8")
        parts.append(_LENGTH.pack(len(encoded)) + encoded)
    return b"".join(parts)


def unpack_binary(body: bytes, header_length: str) -> str:
    """The JSON request a binary-extension request encodes: its JSON header, with each
    input's `binary_data_size` bytes turned into `data`."""
    if not header_length.isascii() or not header_length.isdigit():
        raise _invalid(f"{BINARY_HEADER} must be a number of bytes, not {header_length[:20]!r}")
    size = int(header_length)
    if not 0 < size <= len(body):
        raise _invalid(f"{BINARY_HEADER} is {size}, but the body has {len(body)} bytes")
    request = jsontext.loads(body[:size], "the request's JSON header")
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise InvalidJson("the request's JSON header must be an object with 'inputs'")
    position = size
    for index, tensor in enumerate(request["inputs"]):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        where = f"inputs[{index}]"
        length = parameters.pop("binary_data_size")
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise _invalid(f"{where}.parameters.binary_data_size must be a number of bytes")
        if "data" in tensor:
            raise _invalid(f"{where} has both data and binary_data_size")
        if position + length > len(body):
            raise _invalid(f"{where}: binary_data_size {length} runs past the end of the body")
        if tensor.get("datatype") != "BYTES":
            raise _invalid(f"{where} must be BYTES (the texts), not {tensor.get('datatype')!r}")
        tensor["data"] = _bytes_elements(body[position : position + length], where)
        position += length
    if position != len(body):
        raise _invalid(f"{len(body) - position} bytes after the last input's binary data")
    return json.dumps(request, ensure_ascii=False)


# ------------------------------------------------------------------------------- requests
def _flat(data: list[Any], shape: Sequence[int]) -> list[Any]:
    """The tensor's elements in row-major order: `data` is flat, or nested as the shape
    (`[N, 1]`: a list of one-text lists). Anything nested deeper fails the element check."""
    if len(shape) == 1:
        return data
    flat: list[Any] = []
    for row in data:
        flat.extend(row if isinstance(row, list) else [row])
    return flat


def texts_of(request: V2InferRequest) -> list[str]:
    """The texts of the request's one input, checked against the protocol's rules (the texts
    themselves are then checked like any other: the caller validates them)."""
    if len(request.inputs) != 1:
        raise _invalid(
            f"this model takes one input, {INPUT!r} (BYTES); the request has {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    if tensor.name != INPUT:
        raise _invalid(f"unknown input {tensor.name[:MAX_NAME_CHARS]!r}: the input is {INPUT!r}")
    if tensor.datatype != "BYTES":
        raise _invalid(f"inputs[0] must be BYTES (the texts), not {tensor.datatype!r}")
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise _invalid(f"inputs[0].shape must be [N] or [N, 1] with N >= 1, not {shape}")
    texts = _flat(tensor.data, shape)
    if len(texts) != shape[0]:
        raise _invalid(f"inputs[0].shape {shape} says {shape[0]} texts; data has {len(texts)}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise _invalid(f"inputs[0].data[{index}] must be a string (BYTES as UTF-8 text)")
    return texts


def _flag(parameters: dict[str, Any] | None, name: str, where: str) -> bool:
    value = (parameters or {}).get(name, False)
    if not isinstance(value, bool):
        raise _invalid(f"{where}.{name} must be true or false")
    return value


class Plan:
    """What a request asks for: which outputs, explained or not, which in binary."""

    def __init__(self, request: V2InferRequest) -> None:
        self.explain = _flag(request.parameters, "explain", "parameters")
        binary_default = _flag(request.parameters, "binary_data_output", "parameters")
        self.outputs: list[tuple[str, bool, int]] = []  # (name, binary, class_count)
        seen: set[str] = set()
        for index, output in enumerate(request.outputs or ()):
            where = f"outputs[{index}]"
            if output.name not in OUTPUTS:
                raise _invalid(
                    f"unknown output {output.name!r}; this model's outputs: {', '.join(OUTPUTS)}"
                )
            if output.name in seen:
                raise _invalid(f"{where}: output {output.name!r} is requested twice")
            seen.add(output.name)
            parameters = output.parameters or {}
            binary = (
                _flag(parameters, "binary_data", f"{where}.parameters")
                if "binary_data" in parameters
                else binary_default
            )
            count = parameters.get("classification", 0)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise _invalid(f"{where}.parameters.classification must be a whole number >= 0")
            if count and output.name != PROBABILITIES:
                raise _invalid(f"{where}: classification applies to {PROBABILITIES!r} only")
            self.outputs.append((output.name, binary, count))
        if EXPLANATION in seen:
            self.explain = True
        if not self.outputs:
            names = OUTPUTS if self.explain else OUTPUTS[:-1]
            self.outputs = [(name, binary_default, 0) for name in names]


def _tensor(
    name: str, datatype: str, shape: list[int], values: list[Any], binary: bool, raw: list[bytes]
) -> V2ResponseOutput:
    if not binary:
        return V2ResponseOutput(name=name, shape=shape, datatype=datatype, data=values)
    if datatype == "BYTES":
        encoded = _bytes_binary(values)
    else:
        encoded = struct.pack(f"<{len(values)}f", *values)
    raw.append(encoded)
    return V2ResponseOutput(
        name=name, shape=shape, datatype=datatype, parameters={"binary_data_size": len(encoded)}
    )


def _top(prediction: Prediction, labels: Sequence[str], count: int) -> list[str]:
    ranked = sorted(range(len(labels)), key=lambda i: -prediction.scores[labels[i]])[:count]
    return [f"{prediction.scores[labels[i]]:.6f}:{i}:{labels[i]}" for i in ranked]


def response(
    request: V2InferRequest,
    plan: Plan,
    classifier: Classifier,
    predictions: Sequence[Prediction],
) -> tuple[V2InferResponse, bytes]:
    """The protocol's answer, and the binary data that follows its JSON (empty: none)."""
    labels = list(classifier.labels)
    count = len(predictions)
    outputs: list[V2ResponseOutput] = []
    raw: list[bytes] = []
    for name, binary, classes in plan.outputs:
        if name == LABEL:
            values: list[Any] = [p.label for p in predictions]
            outputs.append(_tensor(name, "BYTES", [count], values, binary, raw))
        elif name == SCORE:
            values = [float(p.score) for p in predictions]
            outputs.append(_tensor(name, "FP32", [count], values, binary, raw))
        elif name == PROBABILITIES and classes:
            k = min(classes, len(labels))
            values = [entry for p in predictions for entry in _top(p, labels, k)]
            outputs.append(_tensor(name, "BYTES", [count, k], values, binary, raw))
        elif name == PROBABILITIES:
            values = [float(p.scores[label]) for p in predictions for label in labels]
            tensor = _tensor(name, "FP32", [count, len(labels)], values, binary, raw)
            tensor.parameters = (tensor.parameters or {}) | {
                "labels": json.dumps(labels, ensure_ascii=False)
            }
            outputs.append(tensor)
        else:
            values = [
                json.dumps(p.explanation.to_dict() if p.explanation else None, ensure_ascii=False)
                for p in predictions
            ]
            outputs.append(_tensor(name, "BYTES", [count], values, binary, raw))
    answer = V2InferResponse(
        model_name=classifier.name,
        model_version=classifier.version,
        id=request.id,
        outputs=outputs,
    )
    return answer, b"".join(raw)


__all__ = [
    "BINARY_HEADER",
    "ERROR_CODE_HEADER",
    "EXTENSIONS",
    "Plan",
    "V2Error",
    "V2InferRequest",
    "V2InferResponse",
    "V2Liveness",
    "V2ModelMetadata",
    "V2Readiness",
    "V2ServerMetadata",
    "model_metadata",
    "reference",
    "response",
    "texts_of",
    "unpack_binary",
]
