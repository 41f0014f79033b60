"""The committed OpenAPI document is the one the code produces."""

from __future__ import annotations

from pathlib import Path

from civitas.cli import render_openapi

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openapi.json"


def test_committed_openapi_is_current() -> None:
    assert SPEC.exists(), "run `civitas openapi` to write specs/openapi.json"
    committed, current = SPEC.read_text(), render_openapi()
    if committed != current:
        import difflib

        diff = list(difflib.unified_diff(committed.splitlines(), current.splitlines(), lineterm="", n=1))
        raise AssertionError("specs/openapi.json is stale: run `civitas openapi`\n" + "\n".join(diff[:40]))


def test_every_operation_documents_its_errors_as_problem_json() -> None:
    import json

    from civitas.app import ROUTER_MODULES

    protocol_paths: set[str] = set()
    for name in ROUTER_MODULES:
        protocol_paths |= set(getattr(__import__(name, fromlist=["x"]), "PROTOCOL_ERROR_PATHS", ()))
    assert "/oauth/token" in protocol_paths
    doc = json.loads(render_openapi())
    assert "HTTPValidationError" not in json.dumps(doc)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            responses = operation["responses"]
            if path in protocol_paths:
                assert "default" not in responses  # the protocol's own error format
                continue
            assert responses["default"]["content"]["application/problem+json"]["schema"] == problem_ref
            if "422" in responses:
                assert responses["422"]["content"]["application/problem+json"]["schema"] == problem_ref
