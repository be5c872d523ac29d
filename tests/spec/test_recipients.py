"""Recipient list files (R17, R18): header/no header, CSV quoting, BOM, comments, duplicates.

Every finding points at the recipient file's own line:col (1-based, as an editor shows it).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mailcore.spec import ERROR, WARNING
from mailcore.spec.limits import limit
from mailcore.spec.recipients import FIELDS, load_recipients

LIST_PATH = ("recipient_lists", 0)


def load(tmp_path: Path, text: str | bytes, name: str = "list.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return load_recipients(path, LIST_PATH)


def found(result) -> list[tuple]:
    """(line, col, validator id, severity) of each finding."""
    return [(i.location.line, i.location.col, i.validator, i.severity) for i in result.issues]


def row(addr, name=None, nick=None, gender=None, birthday=None, mobile=None):
    return (addr, name, nick, gender, birthday, mobile)


def test_fields_follow_the_template_variables():
    assert FIELDS == ("EAddr", "UserName", "NickName", "Gender", "Birthday", "Mobile")


def test_header_with_labels_maps_columns_in_any_order(tmp_path):
    r = load(tmp_path, "Nick name{NickName},E-mail address{EAddr},Mobile{Mobile}\n"
                       "Wei,li.wei@example.com,13800000001\n"
                       "Min,zhang.min@example.com,\n")
    assert r.issues == []
    assert r.rows == [row("li.wei@example.com", nick="Wei", mobile="13800000001"),
                      row("zhang.min@example.com", nick="Min")]
    assert r.addresses == ["li.wei@example.com", "zhang.min@example.com"]


def test_no_header_uses_the_default_column_order(tmp_path):
    r = load(tmp_path, "li.wei@example.com,Li Wei,Wei,Mr,1988/03/14,13800000001\nreader@example.net\n", "list.txt")
    assert r.issues == []
    assert r.rows == [row("li.wei@example.com", "Li Wei", "Wei", "Mr", "1988/03/14", "13800000001"),
                      row("reader@example.net")]


def test_unquoted_fields_are_trimmed_and_columns_point_at_the_value(tmp_path):
    r = load(tmp_path, "Name{UserName},Email{EAddr}\nLi Wei ,  bad@@example.com\n")
    assert found(r) == [(2, 11, "list-row-email", ERROR)]


def test_quoted_fields_with_commas(tmp_path):
    r = load(tmp_path, 'Name{UserName},Email{EAddr},Nick{NickName}\n'
                       '"Li, Wei",li.wei@example.com,"Wei, Jr."\n'
                       '"Zhang, Min",zhang.min@@example.com,Min\n')
    assert r.rows == [row("li.wei@example.com", "Li, Wei", "Wei, Jr.")]
    # '"Zhang, Min"' is 12 characters, then the comma: the address starts at column 14 of line 3
    assert found(r) == [(3, 14, "list-row-email", ERROR)]


def test_quoted_field_with_escaped_quotes_keeps_later_columns_right(tmp_path):
    # The quoted name (22 characters) holds the address text; the finding must point at the address (column 24),
    # not into the name.
    r = load(tmp_path, 'Name{UserName},Email{EAddr}\n"Bo bo@@x.com ""Lee""",bo@@x.com\n')
    assert found(r) == [(2, 24, "list-row-email", ERROR)]


def test_quoted_field_after_a_space(tmp_path):
    # Unquoted fields tolerate a space after the comma; a quoted one must too (csv skipinitialspace).
    r = load(tmp_path, 'Email{EAddr},Name{UserName}\nli.wei@example.com, "Li, Wei"\n')
    assert r.issues == []
    assert r.rows == [row("li.wei@example.com", "Li, Wei")]


def test_bom_is_ignored(tmp_path):
    r = load(tmp_path, "\ufeffEmail{EAddr},Name{UserName}\r\nli.wei@example.com,Li Wei\r\nbad@@example.com,Bad\r\n")
    assert r.rows == [row("li.wei@example.com", "Li Wei")]
    assert found(r) == [(3, 1, "list-row-email", ERROR)]


def test_bom_without_header(tmp_path):
    r = load(tmp_path, b"\xef\xbb\xbfli.wei@example.com,Li Wei\n")
    assert r.issues == []
    assert r.rows == [row("li.wei@example.com", "Li Wei")]


def test_comments_and_blank_lines_are_skipped_but_counted(tmp_path):
    r = load(tmp_path, "# exported 2024-06-01\n\nEmail{EAddr}\n  # a comment after indentation\n\n"
                       "li.wei@example.com\n\nbad@@example.com\n")
    assert r.rows == [row("li.wei@example.com")]
    assert found(r) == [(8, 1, "list-row-email", ERROR)]


def test_comment_before_rows_does_not_make_a_header(tmp_path):
    r = load(tmp_path, "# Email{EAddr},Name{UserName}\nli.wei@example.com,Li Wei\n")
    assert r.issues == [] and r.rows == [row("li.wei@example.com", "Li Wei")]


def test_duplicates_warn_and_keep_the_first(tmp_path):
    r = load(tmp_path, "Email{EAddr},Name{UserName}\nli.wei@example.com,Li Wei\nzhang@example.com,Zhang\n"
                       "LI.WEI@example.com,Someone Else\n")
    assert found(r) == [(4, 1, "list-row-duplicate", WARNING)]
    assert "repeats line 2" in r.issues[0].message
    assert r.rows == [row("li.wei@example.com", "Li Wei"), row("zhang@example.com", "Zhang")]


def test_missing_eaddr_column_in_header(tmp_path):
    r = load(tmp_path, "Name{UserName},Nick{NickName}\nLi Wei,Wei\n")
    assert found(r) == [(1, 1, "list-header", ERROR)]
    assert "{EAddr}" in r.issues[0].message
    assert r.rows == []


def test_unknown_header_variable(tmp_path):
    r = load(tmp_path, "Email{EAddr},City{City},Name{UserName}\nli.wei@example.com,Shanghai,Li Wei\n")
    assert found(r) == [(1, 14, "list-header", ERROR)]
    assert r.rows == [row("li.wei@example.com", "Li Wei")]  # the unknown column is dropped


def test_more_fields_than_header_columns(tmp_path):
    r = load(tmp_path, "Email{EAddr},Name{UserName}\nli.wei@example.com,Li Wei,extra\n")
    assert found(r) == [(2, 27, "list-row", ERROR)]


def test_missing_address(tmp_path):
    r = load(tmp_path, "Name{UserName},Email{EAddr}\nLi Wei,\n")
    assert found(r) == [(2, 8, "list-row-email", ERROR)]


@pytest.mark.parametrize("vid, field, header", [("username-length", 1, "Name{UserName}"),
                                                 ("nickname-length", 2, "Nick{NickName}")])
def test_name_length_limits(tmp_path, vid, field, header):
    n = limit(vid)
    r = load(tmp_path, f"Email{{EAddr}},{header}\na@example.com,{'x' * n}\nb@example.com,{'y' * (n + 1)}\n")
    assert found(r) == [(3, 15, vid, ERROR)]
    assert [x[field] for x in r.rows] == ["x" * n, "y" * (n + 1)]  # the row is kept; the error blocks the config


@pytest.mark.parametrize("separator", ["\u2028", "\x0c", "\x85", "\x1e"], ids=["U+2028", "form-feed", "NEL", "RS"])
def test_only_newlines_end_a_line(tmp_path, separator):
    # str.splitlines() also splits on these; an editor (and the csv module) does not.
    r = load(tmp_path, f"Email{{EAddr}},Name{{UserName}}\nli.wei@example.com,Li{separator}Wei\nbad@@example.com,Bad\n")
    assert found(r) == [(3, 1, "list-row-email", ERROR)]
    assert r.rows == [row("li.wei@example.com", f"Li{separator}Wei")]


def test_unreadable_file(tmp_path):
    r = load(tmp_path, b"Email{EAddr}\n\xff\xfe not utf-8\n")
    assert found(r) == [(1, 1, "list-file", ERROR)]


def test_missing_file(tmp_path):
    r = load_recipients(tmp_path / "nope.csv", LIST_PATH)
    assert [(i.validator, i.location) for i in r.issues] == [("list-file", None)]  # located at the YAML `file:` value
    assert r.issues[0].path == LIST_PATH + ("file",)


def test_digest_follows_the_rows_not_the_formatting(tmp_path):
    a = load(tmp_path, "Email{EAddr},Name{UserName}\nli.wei@example.com,Li Wei\n", "a.csv")
    b = load(tmp_path, "\ufeff# same people\nli.wei@example.com , Li Wei\n\nLI.WEI@example.com,dup\n", "b.csv")
    c = load(tmp_path, "li.wei@example.com,Li Wei Jr\n", "c.csv")
    assert a.digest == b.digest != c.digest
    assert len(a.digest) == 64
