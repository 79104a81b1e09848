"""The human-readable API reference's page model, read from the app's own OpenAPI document (a plain dict).

One section per tag, each operation with its parameters, request body fields and responses; every `$ref`
to a component schema becomes a link to that schema's entry at the end of the page. Pure: no Flask, and
no markup either (the template escapes every string it is given, docstrings included).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

Spec = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")
SCHEMA_REF = "#/components/schemas/"
NESTED_DEPTH = 2  # inline objects inside a schema are listed as `parent.child` fields this deep
UNTAGGED = "other"


@dataclass(frozen=True)
class Span:
    """A run of text: `code` for what a description wrote between backticks; `ref` is the anchor of the
    component schema the text names (its link target)."""

    text: str
    code: bool = False
    ref: str | None = None


Text = tuple[Span, ...]


@dataclass(frozen=True)
class Field:
    """One property of a schema: `parent.child` names for inline nested objects."""

    name: str
    type: Text
    required: bool
    notes: tuple[str, ...]
    description: Text


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path, query, header, cookie
    type: Text
    required: bool
    notes: tuple[str, ...]
    description: Text


@dataclass(frozen=True)
class Body:
    """A request or response body of one content type: its type and, for an object, its fields."""

    content_type: str
    type: Text
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Reply:
    status: str
    description: Text
    bodies: tuple[Body, ...]


@dataclass(frozen=True)
class Operation:
    anchor: str
    method: str
    path: str
    summary: Text
    description: tuple[Text, ...]  # paragraphs
    parameters: tuple[Parameter, ...]
    request: tuple[Body, ...]
    request_required: bool
    replies: tuple[Reply, ...]
    auth: tuple[str, ...] | None  # None: the document's default; () no authentication


@dataclass(frozen=True)
class Section:
    name: str
    anchor: str
    description: Text
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class SchemaEntry:
    name: str
    anchor: str
    description: Text
    type: Text
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    description: tuple[Text, ...]
    auth: tuple[str, ...]
    sections: tuple[Section, ...]
    schemas: tuple[SchemaEntry, ...]

    @property
    def paths(self) -> set[str]:
        """Every path the reference documents."""
        return {op.path for section in self.sections for op in section.operations}


def build_reference(spec: Spec) -> Reference:
    """The page model of an OpenAPI 3 document."""
    info = spec.get("info", {})
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return Reference(
        title=str(info.get("title", "API")),
        version=str(info.get("version", "")),
        description=paragraphs(info.get("description")),
        auth=auth_labels(spec.get("security", []), schemes),
        sections=sections(spec),
        schemas=tuple(
            SchemaEntry(
                name=name,
                anchor=schema_anchor(name),
                description=inline(schema.get("description")),
                type=type_text(schema),
                fields=fields_of(schema, spec),
            )
            for name, schema in spec.get("components", {}).get("schemas", {}).items()
        ),
    )


def schema_anchor(name: str) -> str:
    """The id of a component schema's entry (its `$ref`s link here)."""
    return f"schema-{slug(name)}"


def slug(text: str) -> str:
    """Letters, digits and dashes: an id fragment that needs no escaping."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def inline(text: object) -> Text:
    """A description as spans: `backticked` parts as code, the rest as plain text."""
    if not isinstance(text, str) or not text.strip():
        return ()
    parts = re.split(r"`([^`\n]+)`", " ".join(text.split()))
    return tuple(Span(part, code=i % 2 == 1) for i, part in enumerate(parts) if part)


def paragraphs(text: object) -> tuple[Text, ...]:
    """A docstring's paragraphs (blank-line separated), each as spans."""
    if not isinstance(text, str):
        return ()
    return tuple(spans for block in re.split(r"\n\s*\n", text) if (spans := inline(block)))


def resolve(node: Any, spec: Spec) -> Any:
    """Follow a local `$ref` (#/components/…) to what it names; anything else as it is."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 10:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node


def auth_labels(requirements: list[dict[str, Any]], schemes: dict[str, Any]) -> tuple[str, ...]:
    """How a caller may authenticate: one label per alternative security requirement."""
    labels = []
    for requirement in requirements:
        names = [scheme_label(name, schemes.get(name, {})) for name in requirement]
        labels.append(" + ".join(names) if names else "none")
    return tuple(labels)


def scheme_label(name: str, scheme: dict[str, Any]) -> str:
    if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
        return "Authorization: Bearer <key>"
    if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "basic":
        return "HTTP Basic (the key as user name)"
    if scheme.get("type") == "apiKey":
        return f"{scheme.get('name', name)} ({scheme.get('in', 'header')})"
    return name


def sections(spec: Spec) -> tuple[Section, ...]:
    """The operations grouped by their first tag, in the document's tag order (untagged ones last)."""
    declared = {str(tag.get("name")): tag for tag in spec.get("tags", [])}
    grouped: dict[str, list[Operation]] = {name: [] for name in declared}
    for path, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = str((op.get("tags") or [UNTAGGED])[0])
                grouped.setdefault(tag, []).append(operation(path, method, op, shared, spec))
    return tuple(
        Section(
            name=name,
            anchor=f"tag-{slug(name)}",
            description=inline(declared.get(name, {}).get("description")),
            operations=tuple(ops),
        )
        for name, ops in grouped.items()
        if ops
    )


def operation(path: str, method: str, op: dict[str, Any], shared: list[Any], spec: Spec) -> Operation:
    """One operation: path-level parameters first, overridden by the operation's own of the same name."""
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in [*shared, *op.get("parameters", [])]:
        param = resolve(raw, spec)
        params[(str(param.get("in")), str(param.get("name")))] = param
    body = resolve(op.get("requestBody"), spec) or {}
    security = op.get("security")
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return Operation(
        anchor=f"op-{method}-{slug(path)}",
        method=method.upper(),
        path=path,
        summary=inline(op.get("summary")),
        description=paragraphs(op.get("description")),
        parameters=tuple(parameter(p, spec) for p in params.values()),
        request=bodies(body.get("content", {}), spec),
        request_required=bool(body.get("required")),
        replies=replies(op.get("responses", {}), spec),
        auth=None if security is None else auth_labels(security, schemes),
    )


def parameter(param: dict[str, Any], spec: Spec) -> Parameter:
    schema = param.get("schema", {})
    return Parameter(
        name=str(param.get("name")),
        location=str(param.get("in")),
        type=type_text(schema),
        required=bool(param.get("required")),
        notes=notes(resolve(schema, spec)),
        description=inline(param.get("description")),
    )


def bodies(content: dict[str, Any], spec: Spec) -> tuple[Body, ...]:
    return tuple(
        Body(
            content_type=content_type,
            type=type_text(media.get("schema", {})),
            fields=fields_of(media.get("schema", {}), spec),
        )
        for content_type, media in content.items()
    )


def replies(responses: dict[str, Any], spec: Spec) -> tuple[Reply, ...]:
    """The responses by status, numeric order, `default` last."""
    ordered = sorted(responses.items(), key=lambda item: (item[0] == "default", str(item[0])))
    out = []
    for status, raw in ordered:
        reply = resolve(raw, spec)
        content = reply.get("content", {})
        out.append(Reply(str(status), inline(reply.get("description")), bodies(content, spec)))
    return tuple(out)


def type_text(schema: Any) -> Text:
    """A schema's type in words, component schemas as links: `array of PersonOut`, `string (date-time)`."""
    if not isinstance(schema, dict):
        return (Span("any"),)
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix(SCHEMA_REF)
        return (Span(name, ref=schema_anchor(name)),) if ref.startswith(SCHEMA_REF) else (Span(ref),)
    spans: list[Span] = []
    for key, joiner in (("allOf", " and "), ("anyOf", " or "), ("oneOf", " or ")):
        if isinstance(schema.get(key), list) and schema[key]:
            for i, part in enumerate(schema[key]):
                spans.extend(([Span(joiner)] if i else []) + list(type_text(part)))
            break
    else:
        spans.extend(plain_type(schema))
    if schema.get("nullable"):
        spans.append(Span(" or null"))
    return tuple(spans)


def plain_type(schema: dict[str, Any]) -> list[Span]:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = " or ".join(str(k) for k in kind)
    if kind == "array":
        return [Span("array of "), *type_text(schema.get("items"))]
    extra = schema.get("additionalProperties")
    if kind == "object" and isinstance(extra, dict) and not schema.get("properties"):
        return [Span("object of "), *type_text(extra)] if extra else [Span("object")]
    if not kind:
        return [Span("object" if schema.get("properties") else "any")]
    fmt = schema.get("format")
    return [Span(f"{kind} ({fmt})" if fmt else str(kind))]


def notes(schema: Any) -> tuple[str, ...]:
    """A schema's constraints in short words: allowed values, default, bounds, pattern, read-only."""
    if not isinstance(schema, dict):
        return ()
    out = []
    if "enum" in schema:
        out.append("one of: " + ", ".join(json.dumps(v) for v in schema["enum"]))
    if "default" in schema:
        out.append(f"default: {json.dumps(schema['default'])}")
    for low, high, what in (
        ("minimum", "maximum", "value"),
        ("minLength", "maxLength", "length"),
        ("minItems", "maxItems", "items"),
    ):
        if low in schema and high in schema:
            out.append(f"{what} {schema[low]} to {schema[high]}")
        elif low in schema:
            out.append(f"{what} ≥ {schema[low]}")
        elif high in schema:
            out.append(f"{what} ≤ {schema[high]}")
    if "pattern" in schema:
        out.append(f"pattern: {schema['pattern']}")
    for flag, label in (("readOnly", "read-only"), ("writeOnly", "write-only"), ("deprecated", "deprecated")):
        if schema.get(flag):
            out.append(label)
    return tuple(out)


def fields_of(schema: Any, spec: Spec, prefix: str = "", depth: int = 0) -> tuple[Field, ...]:
    """The properties of an object schema (a `$ref`, `allOf` parts or an array's items are followed)."""
    schema = resolve(schema, spec)
    if not isinstance(schema, dict):
        return ()
    if schema.get("type") == "array":
        return fields_of(schema.get("items"), spec, prefix, depth)
    if isinstance(schema.get("allOf"), list):
        return tuple(f for part in schema["allOf"] for f in fields_of(part, spec, prefix, depth))
    required = set(schema.get("required", []))
    out: list[Field] = []
    for name, prop in (schema.get("properties") or {}).items():
        shown = resolve(prop, spec) if "allOf" not in prop else prop
        out.append(
            Field(
                name=prefix + name,
                type=type_text(prop),
                required=name in required,
                notes=notes(shown),
                description=inline(prop.get("description") or shown.get("description")),
            )
        )
        inline_object = "$ref" not in prop and prop.get("properties")
        if inline_object and depth + 1 < NESTED_DEPTH:
            out.extend(fields_of(prop, spec, f"{prefix}{name}.", depth + 1))
    return tuple(out)
