"""The published manifest JSON Schema and a small validator for the subset it uses.

The schema file (`manifest.schema.json`, shipped in the package) is the single source
of truth. Devices validate against it without the `jsonschema` package (whose compiled
dependencies do not install everywhere); the test suite checks that this validator and
`jsonschema` agree.

Supported keywords: type, enum, const, properties, required, additionalProperties,
propertyNames, items, minItems, uniqueItems, minLength, maxLength, pattern, minimum,
maximum, exclusiveMinimum, exclusiveMaximum, oneOf, $ref (local ``#/$defs/...``).

One check goes beyond JSON Schema: a number must fit a float (an integer of 400 digits
is valid JSON; converting it raised OverflowError deep in the spec parsers).
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from importlib import resources
from typing import Any

SCHEMA_VERSION = 2  # what this edgekit writes: 2 added the optional self_check section
# What it reads: bundles of version 1 (before self-checks) load as they always did. A
# version 1 reader refuses a version 2 manifest by its number ("written by a newer
# edgekit; upgrade"), not by the unknown self_check key ("damaged").
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
_FLOAT_MAX = int(sys.float_info.max)
FORMAT_NAME = "edgekit-bundle"


@functools.lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12) as a dict."""
    text = resources.files("edgekit.bundle").joinpath("manifest.schema.json").read_text("utf-8")
    return json.loads(text)


def schema_path() -> str:
    """Filesystem path of the shipped schema file."""
    return str(resources.files("edgekit.bundle").joinpath("manifest.schema.json"))


def _type_ok(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    raise ValueError(f"schema uses unsupported type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: 1 == 1.0 but True != 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


class _Validator:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def errors(self, value: Any, schema: dict[str, Any], path: str) -> list[str]:
        if "$ref" in schema:
            return self.errors(value, self.resolve(schema["$ref"]), path)
        if "oneOf" in schema:
            return self._one_of(value, schema["oneOf"], path)
        if "const" in schema and not _equal(value, schema["const"]):
            return [f"{path}: expected {_short(schema['const'])}, found {_short(value)}"]
        if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
            return [f"{path}: expected one of {_short(schema['enum'])}, found {_short(value)}"]
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_type_ok(value, t) for t in types):
                return [f"{path}: expected {' or '.join(types)}, found {_short(value)}"]
        out: list[str] = []
        if isinstance(value, dict):
            out += self._object(value, schema, path)
        elif isinstance(value, list):
            out += self._array(value, schema, path)
        elif isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                out.append(f"{path}: expected at least {schema['minLength']} characters, found {_short(value)}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(f"{path}: expected at most {schema['maxLength']} characters, found {len(value)}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append(f"{path}: expected text matching {schema['pattern']}, found {_short(value)}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                out.append(f"{path}: expected a finite number, found {value}")
            if isinstance(value, int) and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
                # 1 followed by 400 zeros is valid JSON, but no float holds it
                return [f"{path}: expected a number a float can hold, found an integer of {len(str(abs(value)))} digits"]
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{path}: expected >= {schema['minimum']}, found {value}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{path}: expected <= {schema['maximum']}, found {value}")
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                out.append(f"{path}: expected > {schema['exclusiveMinimum']}, found {value}")
            if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
                out.append(f"{path}: expected < {schema['exclusiveMaximum']}, found {value}")
        return out

    def _one_of(self, value: Any, branches: list[dict[str, Any]], path: str) -> list[str]:
        results = [self.errors(value, b, path) for b in branches]
        passing = sum(1 for r in results if not r)
        if passing == 1:
            return []
        if passing > 1:
            return [f"{path}: matches more than one alternative of the schema"]
        # Report the alternative that came closest (fewest problems).
        return min(results, key=len)

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
        out: list[str] = []
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing required field {key!r}")
        props = schema.get("properties", {})
        extra_schema = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            sub = f"{path}.{key}"
            if names is not None:
                out += [e.replace(sub, f"{path} key {key!r}", 1) for e in self.errors(key, names, sub)]
            if key in props:
                out += self.errors(item, props[key], sub)
            elif extra_schema is False:
                out.append(f"{path}: unknown field {key!r} (expected only {sorted(props)})")
            elif isinstance(extra_schema, dict):
                out += self.errors(item, extra_schema, sub)
        return out

    def _array(self, value: list[Any], schema: dict[str, Any], path: str) -> list[str]:
        out: list[str] = []
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: expected at least {schema['minItems']} item(s), found {len(value)}")
        if schema.get("uniqueItems"):
            seen = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(seen)) != len(seen):
                out.append(f"{path}: expected unique items, found duplicates")
        if "items" in schema:
            for i, item in enumerate(value):
                out += self.errors(item, schema["items"], f"{path}[{i}]")
        return out


def validate(document: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Validate `document` against `schema` (default: the manifest schema).

    Returns:
        A list of problems, each ``"$.path: expected X, found Y"``; empty when valid.
    """
    root = manifest_schema() if schema is None else schema
    return _Validator(root).errors(document, root, "$")
