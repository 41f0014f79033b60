"""Helpers for the SD-JWT tests: spec-file loading and an independent model of what a frame discloses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sd_jwt.common import SDObj
from sd_jwt.utils.yaml_specification import _yaml_load_specification

from identity.sdjwt import SD

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sd-jwt"


def load_spec(path: Path) -> dict[str, Any]:
    with path.open() as f:
        spec: dict[str, Any] = _yaml_load_specification(f)
    return spec


def load_settings(path: Path) -> dict[str, Any]:
    with path.open() as f:
        settings: dict[str, Any] = yaml.safe_load(f)
    return settings


def to_sd(node: Any) -> Any:
    """sd_jwt's SDObj markers -> our SD markers."""
    if isinstance(node, SDObj):
        return SD(to_sd(node.value))
    if isinstance(node, dict):
        return {to_sd(k): to_sd(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_sd(v) for v in node]
    return node


def plain(node: Any) -> Any:
    """Claims with every SD marker removed (everything disclosed)."""
    if isinstance(node, SD | SDObj):
        return plain(node.value)
    if isinstance(node, dict):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def expected_for_frame(node: Any, frame: Any) -> Any:
    """What a verifier sees when the holder discloses per an sd-jwt-python style frame."""
    if isinstance(node, dict):
        sub = frame if isinstance(frame, dict) else {}
        out = {}
        for key, value in node.items():
            if isinstance(key, SD | SDObj):
                name = key.value
                if sub.get(name):
                    out[name] = expected_for_frame(value, sub[name])
            else:
                out[key] = expected_for_frame(value, sub.get(key))
        return out
    if isinstance(node, list):
        subl = frame if isinstance(frame, list) else []
        items = []
        for i, element in enumerate(node):
            f = subl[i] if i < len(subl) else None
            if isinstance(element, SD | SDObj):
                if f not in (False, None):
                    items.append(expected_for_frame(element.value, f))
            else:
                items.append(expected_for_frame(element, f))
        return items
    return node


def frame_paths(frame: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Claim paths a frame names (each one disclosed exactly, without its nested claims)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(frame, dict):
        for key, value in frame.items():
            if value:
                out.append((*prefix, key))
            out.extend(frame_paths(value, (*prefix, key)))
    elif isinstance(frame, list):
        for i, value in enumerate(frame):
            if value not in (False, None):
                out.append((*prefix, i))
            out.extend(frame_paths(value, (*prefix, i)))
    return out
