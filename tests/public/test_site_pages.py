"""`/` and the API reference at /docs/api: plain HTML from this origin, rendered from /openapi.json."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

from flask import Flask, render_template
from flask.testing import FlaskClient

from survey_service.public.api_reference import build_reference, fields_of, type_text

OPERATION = re.compile(r'<span class="method m-\w+">(\w+)</span> <code class="path">([^<]+)</code></h3>')
METHODS = {"get", "post", "put", "patch", "delete"}


class Links(HTMLParser):
    """Every href and src attribute of a page (text that merely looks like one, as in a snippet, is not)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value or "" for name, value in attrs if name in ("href", "src"))


def links(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return parser.urls


def article(page: str, anchor: str) -> str:
    """The <article> of one operation or schema on the reference page."""
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</article>", start)]


def row(section: str, name: str) -> str:
    """The table row of one field or parameter."""
    cell = rf'<tr><td data-label="\w+"><code class="name">{re.escape(name)}</code>'
    match = re.search(cell + ".*?</tr>", section)
    assert match, name
    return match.group(0)


def test_index_is_html_with_the_links_a_visitor_needs(client: FlaskClient) -> None:
    res = client.get("/")
    assert res.status_code == 200 and res.mimetype == "text/html"
    page = res.get_data(as_text=True)
    urls = set(links(page))
    assert {"/login", "/docs/api", "/openapi.json", "/widget.js", "/healthz"} <= urls
    assert "data-key=&#34;pk_…&#34;" in page or 'data-key="pk_…"' in html.unescape(page)
    assert "docs/widget.md" in page


def test_index_and_reference_send_a_csp_without_script_or_inline_code(client: FlaskClient) -> None:
    for path in ("/", "/docs/api"):
        res = client.get(path)
        csp = res.headers["Content-Security-Policy"]
        assert "script-src 'none'" in csp and "style-src 'self'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, (path, csp)
        page = res.get_data(as_text=True)
        assert not re.search(r"<script\b|<style\b|\sstyle=|\son\w+=", page), path


def test_pages_and_their_styles_name_no_other_origin(client: FlaskClient) -> None:
    for path in ("/", "/docs/api"):
        page = client.get(path).get_data(as_text=True)
        urls = links(page)
        assert urls, path
        # This origin's paths, anchors and the inline icon (data: fetches nothing; its SVG names a namespace).
        assert [u for u in urls if not u.startswith(("/", "#", "data:image/svg+xml,"))] == [], path
        assert [u for u in urls if u.startswith("//")] == [], path
        for sheet in (u for u in urls if u.endswith(".css")):
            with client.get(sheet) as res:  # a file response: closed, or it warns
                assert res.status_code == 200, sheet
                css = res.get_data(as_text=True)
            assert not re.search(r"https?:|@import|url\(", css), sheet


def test_reference_lists_every_operation_of_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    page = client.get("/docs/api").get_data(as_text=True)
    shown = {(method.lower(), html.unescape(path)) for method, path in OPERATION.findall(page)}
    documented = {(m, path) for path, item in spec["paths"].items() for m in item if m in METHODS}
    assert len(documented) > 20
    assert shown == documented
    assert {path for _, path in shown} == set(spec["paths"])
    tags = {tag["name"] for tag in spec["tags"]}
    assert tags <= set(re.findall(r'<h2 id="tag-[\w-]+-title" class="section-title">([^<]+)</h2>', page))


def test_reference_shows_parameters_request_fields_and_response_fields(client: FlaskClient) -> None:
    page = client.get("/docs/api").get_data(as_text=True)
    listing = article(page, "op-get-api-v1-responses")
    category = row(listing, "category")
    assert '<td data-label="In">query</td>' in category and "optional" in category
    assert "&#34;detractor&#34;" in category  # its allowed values
    assert "<code>next_cursor</code>" in row(listing, "cursor")  # a description's `code`
    assert 'href="#schema-responsepage"' in listing and "Fields of the 200 body" in listing
    assert 'href="#schema-responseout"' in row(listing, "data")  # the page's items, linked

    record = article(page, "op-post-api-v1-responses")
    score = row(record, "score")
    assert "integer" in score and "required" in score and "value 0 to 10" in score
    assert 'href="#schema-responsein"' in record

    person_id = row(article(page, "op-get-api-v1-people-person-id"), "person_id")
    assert '<td data-label="In">path</td>' in person_id and "required" in person_id


def test_reference_links_resolve_to_anchors_on_the_page(client: FlaskClient) -> None:
    page = client.get("/docs/api").get_data(as_text=True)
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    targets = {u[1:] for u in links(page) if u.startswith("#")}
    assert {"schema-errorout", "schema-personin", "op-post-api-v1-people", "tag-people"} <= targets
    assert targets - ids == set()
    assert len(ids) == len(re.findall(r'\bid="', page))  # no anchor twice


def test_reference_escapes_what_the_document_says(app: Flask) -> None:
    evil = "<script>alert(1)</script>"
    spec: dict[str, Any] = {
        "info": {"title": "T <b>", "version": "v1", "description": evil},
        "tags": [{"name": "things", "description": evil}],
        "paths": {
            "/things/{id}": {
                "get": {
                    "tags": ["things"],
                    "summary": f"Get `{evil}` now",
                    "parameters": [{"in": "query", "name": 'q"><img>', "schema": {"enum": [evil]}}],
                    "responses": {"200": {"description": evil}},
                }
            }
        },
        "components": {"schemas": {"X": {"properties": {"a": {"type": "string", "description": evil}}}}},
    }
    with app.test_request_context("/docs/api"):
        page = render_template("site_api_reference.html", ref=build_reference(spec))
    assert "<script>" not in page and "<img>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in page  # the backticked part, as code


def test_type_text_and_fields_follow_refs_arrays_all_of_and_nested_objects() -> None:
    spec: dict[str, Any] = {
        "components": {
            "schemas": {
                "Person": {"type": "object", "properties": {"id": {"type": "integer"}}},
                "Page": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
                        "owner": {"allOf": [{"$ref": "#/components/schemas/Person"}], "nullable": True},
                        "when": {"type": "string", "format": "date-time", "readOnly": True},
                        "window": {
                            "type": "object",
                            "properties": {"start": {"type": "integer", "minimum": 0}},
                        },
                        "extra": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            }
        }
    }
    page_ref = {"$ref": "#/components/schemas/Page"}
    assert [(s.text, s.ref) for s in type_text({"type": "array", "items": page_ref})] == [
        ("array of ", None),
        ("Page", "schema-page"),
    ]
    fields = {f.name: f for f in fields_of(page_ref, spec)}
    assert list(fields) == ["data", "owner", "when", "window", "window.start", "extra"]
    assert fields["data"].required and not fields["owner"].required
    assert "".join(s.text for s in fields["owner"].type) == "Person or null"
    assert "".join(s.text for s in fields["when"].type) == "string (date-time)"
    assert fields["when"].notes == ("read-only",)
    assert fields["window.start"].notes == ("value ≥ 0",)
    assert "".join(s.text for s in fields["extra"].type) == "object of string"
    assert [f.name for f in fields_of({"type": "array", "items": page_ref}, spec)][0] == "data"
