"""Every template against every recipient list (mailcore.spec.templates, R18, R19, R29)."""
from __future__ import annotations

from pathlib import Path

import pytest

from mailcore.message import render
from mailcore.spec import ERROR, WARNING, load_account
from mailcore.spec.limits import TEMPLATE_VARIABLES, VARIABLE_PATTERN

ENV = {"FIXTURE_SMTP_PASSWORD": "Abcdefgh12"}


def _account(root: Path, lists: dict[str, str], templates: str) -> Path:
    (root / "lists").mkdir()
    yaml = ["recipient_lists:"]
    for i, (name, text) in enumerate(lists.items()):
        (root / "lists" / f"{name}.csv").write_text(text, encoding="utf-8")
        yaml += [f"  - name: {name}", f"    alias_address: l{i}@mail.example.com", f"    file: lists/{name}.csv"]
    (root / "lists.yaml").write_text("\n".join(yaml) + "\n", encoding="utf-8")
    (root / "templates.yaml").write_text(templates, encoding="utf-8")
    return root


def _findings(root: Path):
    loaded = load_account(root, environ=ENV)
    return [(Path(loc.file).relative_to(root).as_posix(), loc.line, loc.col, i.validator, i.severity, i.message)
            for loc, i in loaded.report.issues]


def test_renderer_and_validate_share_one_pattern():
    assert render._VAR is VARIABLE_PATTERN
    assert [m.group(1) for m in VARIABLE_PATTERN.finditer("".join("{%s}" % v for v in TEMPLATE_VARIABLES))] \
        == list(TEMPLATE_VARIABLES)


def test_every_list_against_every_template(minimal_account):
    root = _account(minimal_account, {
        "full": "e{EAddr},n{UserName},k{NickName}\na@example.com,Ann,An\nb@example.com,Bob,Bo\n",
        "names": "e{EAddr},n{UserName}\nc@example.com,Cy\n",
        "bare": "d@example.com\ne@example.com\n",  # no header: one column, read by position
    }, "templates:\n"
       "  - name: nick\n    subject: 'Hi {NickName}'\n    body: '<p>{EAddr}</p>'\n"
       "  - name: name\n    subject: Hello\n    body: |\n      <p>\n      Dear {UserName}\n      </p>\n"
       "  - name: plain\n    subject: Notice\n    body: '<p>for {EAddr}</p>'\n")
    got = _findings(root)
    assert [g[:5] for g in got] == [
        ("templates.yaml", 3, 18, "template-list-variable", ERROR),  # {NickName}: names and bare have no column
        ("templates.yaml", 9, 12, "template-list-variable", ERROR),  # {UserName} in the block scalar: bare
    ]
    assert ("list 'names' has no {NickName} column (its columns: {EAddr}, {UserName}); list 'bare' has no "
            "{NickName} column (no header, its rows have 1 column: {EAddr})") in got[0][5]
    assert "'full'" not in got[0][5] and "'names'" not in got[1][5] and "'bare'" in got[1][5]


@pytest.mark.parametrize("rows, expected", [
    (["a@example.com,Ann,An", "b@example.com,Bob,", "c@example.com,Cy", "d@example.com,Di,Dee"],
     [("template-list-variable-empty", WARNING, "2 of 4 rows of list 'readers' leave it empty (first: lists/readers.csv:2)")]),
    (["a@example.com,Ann,An", "b@example.com,Bob,Bo"], []),
    (["a@example.com,Ann", "b@example.com,Bob"], [("template-list-variable", ERROR, "its rows have 2 columns")]),
    (["a@example.com,Ann,", "b@example.com,Bob,"], [("template-list-variable", ERROR, "empty in all 2 rows")]),
], ids=["some-empty", "all-filled", "no-column", "all-empty"])
def test_nickname_fill(minimal_account, rows, expected):
    root = _account(minimal_account, {"readers": "\n".join(rows) + "\n"},
                    "templates:\n  - name: t\n    subject: 'Hi {NickName}'\n    body: x\n")
    got = _findings(root)
    assert [(g[3], g[4]) for g in got] == [e[:2] for e in expected]
    for g, e in zip(got, expected):
        assert g[:3] == ("templates.yaml", 3, 18) and e[2] in g[5], g


def test_empty_rows_are_what_the_renderer_leaves_empty(minimal_account):
    """The rows validate counts as empty are the rows whose rendered subject lacks the value, with the
    variables cleanup builds from a stored row (None columns dropped, EAddr added)."""
    rows = ["a@example.com,Ann,An", "b@example.com,Bob,", "c@example.com", "d@example.com,,Dee"]
    root = _account(minimal_account, {"readers": "\n".join(rows) + "\n"},
                    "templates:\n  - name: t\n    subject: '[{UserName}|{NickName}]'\n    body: x\n")
    loaded = load_account(root, environ=ENV)
    data = loaded.spec.recipient_lists[0].data
    for var, idx in (("UserName", 1), ("NickName", 2)):
        count, first = data.empty_rows(var)
        rendered = []
        for row in data.rows:
            variables = {k: v for k, v in zip(TEMPLATE_VARIABLES[1:], row[1:]) if v is not None} | {"EAddr": row[0]}
            rendered.append(render.render_text("{%s}" % var, variables, where="header"))
        assert count == rendered.count("")
        assert first == data.lines[rendered.index("")]
    messages = [i.message for _, i in loaded.report.issues]
    assert any("uses {UserName}: 2 of 4 rows" in m and "readers.csv:3" in m for m in messages), messages
    assert any("uses {NickName}: 2 of 4 rows" in m and "readers.csv:2" in m for m in messages), messages


def test_a_list_without_rows_or_file_is_not_checked(minimal_account):
    root = _account(minimal_account, {"empty": "# nobody yet\n"},
                    "templates:\n  - name: t\n    subject: 'Hi {NickName}'\n    body: x\n")
    assert _findings(root) == []
