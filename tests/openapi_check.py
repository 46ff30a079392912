"""How a JSON value differs from a schema of the API's OpenAPI document: the few JSON Schema words
the document uses (type, enum, required, properties, items, $ref), so that the unit and the service
tests hold real answers against the document without a validator package."""

from __future__ import annotations

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
          "array": list, "null": type(None)}


def _is(value: object, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON's true is no number
    return isinstance(value, _TYPES[name])


def mismatches(value: object, schema: dict, spec: dict, where: str = "$") -> list[str]:
    """What in `value` the schema does not allow (empty: it fits); `spec` resolves $refs."""
    if "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = spec["components"]["schemas"][name]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if types and not any(_is(value, t) for t in types):
        return [f"{where}: {value!r} is not {' or '.join(types)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    found = []
    if isinstance(value, dict) and "properties" in schema:
        found += [f"{where}.{k}: missing" for k in schema.get("required", []) if k not in value]
        found += [f"{where}.{k}: not in the schema" for k in value if k not in schema["properties"]]
        for k, v in value.items():
            if k in schema["properties"]:
                found += mismatches(v, schema["properties"][k], spec, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += mismatches(item, schema["items"], spec, f"{where}[{n}]")
    return found
