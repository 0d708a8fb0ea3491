"""template.yaml, read as CloudFormation reads it: the conditions evaluated for a choice of
parameters, so what a deployment gets - who may call the API, what the functions may do,
what the model bucket refuses - is checked, not just that the YAML parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from maas.core.limits import (
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_MESSAGE,
    MAX_TEXTS_PER_REQUEST,
    SQS_MAX_MESSAGE_BYTES,
)

REPO = Path(__file__).resolve().parent.parent


class _CloudFormation(yaml.SafeLoader):
    """CloudFormation's short tags as their long forms: !Ref x -> {"Ref": x}, !If -> Fn::If."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CloudFormation.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load((REPO / "template.yaml").read_text("utf-8"), _CloudFormation)
    return doc


class Stack:
    """The template's values for one set of parameters (defaults, overridden)."""

    def __init__(self, template: dict[str, Any], **parameters: Any) -> None:
        self.template = template
        self.parameters = {
            name: spec.get("Default") for name, spec in template["Parameters"].items()
        } | parameters
        self.conditions = {
            name: self.value(expression) for name, expression in template["Conditions"].items()
        }

    def value(self, item: Any) -> Any:
        if isinstance(item, list):
            return [self.value(x) for x in item]
        if not isinstance(item, dict) or len(item) != 1:
            return {k: self.value(v) for k, v in item.items()} if isinstance(item, dict) else item
        ((key, argument),) = item.items()
        if key == "Ref":
            return self.parameters.get(argument, {"Ref": argument})
        if key == "Fn::If":
            name, yes, no = argument
            return self.value(yes if self.conditions[name] else no)
        if key == "Fn::Equals":
            left, right = (self.value(a) for a in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.value(argument[0])
        if key == "Fn::Join":
            separator, parts = argument
            values = self.value(parts)
            return separator.join(
                str(v) for v in (values if isinstance(values, list) else [values])
            )
        if key == "Condition":
            return self.conditions[argument]
        return {key: self.value(argument)}

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: self.value(resource.get("Properties", {}))
            for name, resource in self.template["Resources"].items()
            if resource["Type"] == kind
            and ("Condition" not in resource or self.conditions[resource["Condition"]])
        }


@pytest.mark.parametrize(
    ("auth", "expected"), [("iam", "AWS_IAM"), ("jwt", "JWT"), ("none", "NONE")]
)
def test_every_route_authenticates_as_the_parameter_says(
    template: dict[str, Any], auth: str, expected: str
) -> None:
    stack = Stack(template, ApiAuth=auth)
    routes = stack.resources("AWS::ApiGatewayV2::Route")
    assert {r["RouteKey"] for r in routes.values()} == {
        "POST /models/{name}/predict",
        "GET /models/{name}",
        "GET /health",
        "GET /",
        "ANY /{proxy+}",
    }
    for name, route in routes.items():
        assert route["AuthorizationType"] == expected, name
        if expected == "JWT":
            assert route["AuthorizerId"] == {"Ref": "HttpApiJwtAuthorizer"}, name
    authorizers = stack.resources("AWS::ApiGatewayV2::Authorizer")
    assert list(authorizers) == (["HttpApiJwtAuthorizer"] if auth == "jwt" else [])


def test_the_default_deployment_requires_iam_and_has_no_cors(template: dict[str, Any]) -> None:
    stack = Stack(template)
    assert stack.parameters["ApiAuth"] == "iam"
    (api,) = stack.resources("AWS::ApiGatewayV2::Api").values()
    assert api["CorsConfiguration"] == {"Ref": "AWS::NoValue"}
    cors = Stack(template, CorsAllowOrigins=["https://app.example.com"])
    (api,) = cors.resources("AWS::ApiGatewayV2::Api").values()
    assert api["CorsConfiguration"]["AllowOrigins"] == ["https://app.example.com"]


def test_version_objects_cannot_be_overwritten_in_the_model_bucket(
    template: dict[str, Any],
) -> None:
    policies = Stack(template).resources("AWS::S3::BucketPolicy")
    statements = [s for p in policies.values() for s in p["PolicyDocument"]["Statement"]]
    (deny,) = [s for s in statements if s.get("Sid") == "DenyVersionOverwrites"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:PutObject"
    assert deny["Condition"] == {"Null": {"s3:if-none-match": "true"}}
    assert "versions/*" in str(deny["Resource"])


def test_the_functions_may_verify_versions_but_never_sign(template: dict[str, Any]) -> None:
    for name, function in Stack(template).resources("AWS::Serverless::Function").items():
        actions = [
            action
            for policy in function["Policies"]
            for statement in policy["Statement"]
            for action in statement["Action"]
        ]
        assert "kms:Verify" in actions and not [a for a in actions if a.startswith("kms:Sign")], (
            name
        )
    (key,) = Stack(template).resources("AWS::KMS::Key").values()
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert Stack(template, SigningKeyArn="arn:aws:kms:x").resources("AWS::KMS::Key") == {}


def test_reserved_concurrency_is_off_unless_asked(template: dict[str, Any]) -> None:
    def reserved(**parameters: Any) -> Any:
        stack = Stack(template, **parameters)
        return stack.resources("AWS::Serverless::Function")["PredictFunction"].get(
            "ReservedConcurrentExecutions"
        )

    assert reserved() == {"Ref": "AWS::NoValue"}
    assert reserved(PredictReservedConcurrency=20) == 20


def test_the_templates_defaults_are_the_limits(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["ApiMaxTexts"]["Default"] == MAX_TEXTS_PER_REQUEST
    assert parameters["QueueMaxTextsPerMessage"]["Default"] == MAX_TEXTS_PER_MESSAGE
    assert parameters["MaxTextChars"]["Default"] == MAX_TEXT_CHARS
    queue = template["Resources"]["PredictionsQueue"]["Properties"]
    assert queue["MaximumMessageSize"] == SQS_MAX_MESSAGE_BYTES
