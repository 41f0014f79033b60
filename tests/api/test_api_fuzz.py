"""Every operation in the API document, fed generated inputs (valid and invalid alike), answers
without a server error, and refuses in problem+json, or in its protocol's own format.

Inputs come from schemathesis, reading the committed OpenAPI document (test_openapi.py keeps it the
one the code serves); the run is derandomized so CI sees the same inputs every time. Set
CIVITAS_FUZZ_EXAMPLES to explore further locally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from .conftest import BASE_URL, TokenFor, bearer

EXAMPLES = int(os.environ.get("CIVITAS_FUZZ_EXAMPLES", "20"))
# Every scope a route asks for: a missing one shows up as an insufficient-scope refusal below.
SCOPES = (
    "analytics:query consent consent:admin identity:admin identity:credential identity:issue "
    "identity:verify ledger:pay ledger:read ledger:write sensors:ingest sensors:read"
)
PROBLEM = "application/problem+json"


@pytest.fixture
def every_scope(token_for: TokenFor) -> dict[str, str]:
    return bearer(token_for(SCOPES))


schema = schemathesis.openapi.from_path(Path(__file__).resolve().parents[2] / "specs" / "openapi.json")


def _send(client: TestClient, case: Any, headers: dict[str, str]) -> Any:
    """The generated request through the real app (schemathesis shapes it for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    if isinstance(kwargs.get("data"), bytes):
        kwargs["content"] = kwargs.pop("data")
    cookies = kwargs.pop("cookies", None)
    client.cookies.clear()
    if cookies:
        client.cookies.update(cookies)
    return client.request(**kwargs)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_answers_not_server_errors(
    case: Any, app: FastAPI, client: TestClient, every_scope: dict[str, str]
) -> None:
    response = _send(client, case, every_scope)
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", "")
    if case.path in app.state.protocol_error_paths:
        assert content_type == "application/json" and "error" in response.json(), (where, response.text)
        return
    assert content_type == PROBLEM, f"{where}: {response.status_code} {content_type}"
    assert not response.json()["type"].endswith(":insufficient-scope"), f"{where}: add its scope to SCOPES"
