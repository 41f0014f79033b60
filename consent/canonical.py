"""Canonical JSON bytes: sorted keys, no whitespace, UTF-8, no NaN/Infinity.

For the value types used here (objects, arrays, strings, integers, finite floats, booleans,
null) this matches RFC 8785 (JCS) except for the spelling of some floats; whatever signs or
hashes these bytes keeps the bytes, so a verifier never needs to re-serialise.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
