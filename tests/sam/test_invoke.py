"""`sam local invoke`: each function in the real Lambda runtime (a fresh container per call),
with the committed events, against the model published to moto on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from sam import samlocal

pytestmark = pytest.mark.sam

HTTP_EVENTS = samlocal.EVENTS / "http"
MIXED_BATCH = samlocal.EVENTS / "sqs" / "mixed-batch.json"

BAD_INPUT = samlocal.BAD_INPUT_EVENTS


def invoke_http(stack: samlocal.LocalStack, event: str) -> tuple[int, dict[str, Any]]:
    result = samlocal.invoke(
        "PredictFunction", HTTP_EVENTS / f"{event}.json", stack.template, stack.env_file
    )
    response = result.payload
    assert response["headers"]["Content-Type"] == "application/json", response
    return response["statusCode"], json.loads(response["body"])


def test_predict_one_finds_the_positive_review(sam_stack: samlocal.LocalStack) -> None:
    status, body = invoke_http(sam_stack, "predict-one")
    assert status == 200, body
    assert body["model"] == {"name": "reviews", "version": "1"}
    (prediction,) = body["predictions"]
    assert prediction["label"] == "positive"
    assert prediction["score"] == max(prediction["scores"].values()) > 0.5


def test_predict_many_labels_each_review_in_order(sam_stack: samlocal.LocalStack) -> None:
    status, body = invoke_http(sam_stack, "predict-many")
    assert status == 200, body
    labels = [p["label"] for p in body["predictions"]]
    assert labels == ["positive", "negative", "negative", "positive"]


def test_an_explained_prediction_names_spans_of_the_text(sam_stack: samlocal.LocalStack) -> None:
    status, body = invoke_http(sam_stack, "predict-explain")
    assert status == 200, body
    text = json.loads(json.loads((HTTP_EVENTS / "predict-explain.json").read_text())["body"])[
        "text"
    ]
    explanation = body["predictions"][0]["explanation"]
    assert explanation["label"] == body["predictions"][0]["label"] == "positive"
    assert explanation["tokens"] and all(
        0 <= t["start"] < t["end"] <= len(text) for t in explanation["tokens"]
    )


@pytest.mark.parametrize(("event", "status", "code"), BAD_INPUT)
def test_bad_input_is_the_documented_client_error(
    sam_stack: samlocal.LocalStack, event: str, status: int, code: str
) -> None:
    got, body = invoke_http(sam_stack, event)
    assert (got, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and body["error"]["message"]


def test_mixed_batch_fails_exactly_the_poison_messages(sam_stack: samlocal.LocalStack) -> None:
    records = json.loads(MIXED_BATCH.read_text(encoding="utf-8"))["Records"]
    good, truncated, no_text, good_too = records  # as events/generate.py builds them

    result = samlocal.invoke("BatchFunction", MIXED_BATCH, sam_stack.template, sam_stack.env_file)

    failed = sorted(item["itemIdentifier"] for item in result.payload["batchItemFailures"])
    assert failed == sorted([truncated["messageId"], no_text["messageId"]])

    s3 = boto3.client("s3", endpoint_url=sam_stack.endpoint)
    bucket = sam_stack.results_bucket
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(obj["Key"] for obj in listed) == sorted(
        [
            "results/review-0001.json",
            "results/review-0104.json",
            "failures/review-0103.json",  # no text, but a readable id
            f"failures/{truncated['messageId']}.json",  # unreadable: filed by SQS message id
        ]
    )

    def read(key: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return doc

    for record, label in ((good, "positive"), (good_too, "negative")):
        message = json.loads(record["body"])
        stored = read(f"results/{message['id']}.json")
        assert stored["model"] == {"name": "reviews", "version": "1"}
        assert [p["label"] for p in stored["predictions"]] == [label]
        assert (stored["batch"], stored["sqs_message_id"]) == ("demo", record["messageId"])
        assert message["text"] not in json.dumps(stored, ensure_ascii=False)  # no texts stored

    assert read("failures/review-0103.json")["code"] == "missing_text"
    assert read(f"failures/{truncated['messageId']}.json")["code"] == "invalid_json"
