"""Files the config points at: confined to the config directory (symlinks resolved) unless
MAILCORE_ALLOW_OUTSIDE_CONFIG lists their directory; every kind capped in size (FILE_CAPS);
unparseable files never quoted beyond one line."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailcore.spec import load_account
from mailcore.spec.files import ALLOW_ENV, FILE_CAPS

PASSWORD = {"FIXTURE_SMTP_PASSWORD": "Abcdefgh12"}
SECRET_LINES = "c2Vjb25kIGxpbmUgb2YgYSBmYWtlIGtleQ=="


def findings(loaded, root):
    out = []
    for loc, issue in loaded.report.issues:
        try:
            file = Path(loc.file).relative_to(root).as_posix()
        except ValueError:
            file = loc.file
        out.append((file, loc.line, loc.col, issue.validator, issue.message))
    return out


def _template(root: Path, body_file: str) -> None:
    (root / "templates.yaml").write_text(
        f"templates:\n  - name: big\n    subject: A big one\n    body_file: {body_file}\n", encoding="utf-8")


def _list(root: Path, file: str) -> None:
    (root / "lists.yaml").write_text(
        f"recipient_lists:\n  - name: big-list\n    alias_address: big@mail.example.com\n    file: {file}\n", encoding="utf-8")


def _secret(root: Path, file: str) -> None:
    text = (root / "account.yaml").read_text(encoding="utf-8")
    (root / "account.yaml").write_text(text.replace("{env: FIXTURE_SMTP_PASSWORD}", "{file: %s}" % file), encoding="utf-8")


def _big(path: Path, size: int, line: bytes = b"reader@example.com\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(line * (size // len(line) + 1))


# kind -> (write a config that reads a file of `size` bytes; the finding (file, line, col, id))
CAPPED = {
    "config": (lambda root, size: _big(root / "zz.yaml", size, b"# padding\n"), ("zz.yaml", 1, 1, "yaml-syntax")),
    "template": (lambda root, size: (_template(root, "templates/big.html"), _big(root / "templates/big.html", size, b"<p>x</p>\n")),
                 ("templates.yaml", 4, 16, "template-body-file")),
    "recipients": (lambda root, size: (_list(root, "lists/big.csv"), _big(root / "lists/big.csv", size)),
                   ("lists.yaml", 4, 11, "list-file")),
    "secret": (lambda root, size: (_secret(root, "secrets/pw.txt"), _big(root / "secrets/pw.txt", size, b"Abcdefgh12")),
               ("account.yaml", 28, 20, "secret-unresolved")),
}


def test_every_cap_is_tested():
    assert set(CAPPED) == set(FILE_CAPS)


@pytest.mark.parametrize("kind", sorted(FILE_CAPS))
def test_a_file_over_its_cap_is_refused_unread(minimal_account, kind):
    write, (file, line, col, vid) = CAPPED[kind]
    cap = FILE_CAPS[kind][0]
    write(minimal_account, cap + 1)
    (got,) = findings(load_account(minimal_account, environ=PASSWORD), minimal_account)
    assert got[:4] == (file, line, col, vid)
    assert f"may have at most {cap}" in got[4] and "bytes" in got[4]


def test_files_outside_are_allowed_from_listed_directories(minimal_account, tmp_path):
    outside = tmp_path / "run-secrets"
    outside.mkdir()
    (outside / "pw.txt").write_text("Abcdefgh12\n", encoding="utf-8")
    _secret(minimal_account, str(outside / "pw.txt"))
    (got,) = findings(load_account(minimal_account, environ={}), minimal_account)
    assert got[3] == "secret-unresolved" and "is outside the config directory" in got[4] and ALLOW_ENV in got[4]
    assert load_account(minimal_account, environ={ALLOW_ENV: str(outside)}).report.issues == []
    assert load_account(minimal_account, environ={ALLOW_ENV: f"/nonexistent{os.pathsep}{outside}"}).report.issues == []


def test_a_symlink_out_of_the_config_directory_is_refused(minimal_account, tmp_path):
    secret_key = tmp_path / "id_rsa"
    secret_key.write_text("-----BEGIN FAKE TEST KEY-----\n" + SECRET_LINES + "\n-----END FAKE TEST KEY-----\n")
    (minimal_account / "templates").mkdir()
    (minimal_account / "templates" / "body.html").symlink_to(secret_key)
    _template(minimal_account, "templates/body.html")
    (got,) = findings(load_account(minimal_account, environ=PASSWORD), minimal_account)
    assert got[:4] == ("templates.yaml", 4, 16, "template-body-file") and "is outside the config directory" in got[4]


@pytest.mark.parametrize("content", [
    b"-----BEGIN FAKE TEST KEY-----\n" + SECRET_LINES.encode() + b"\n" + SECRET_LINES.encode() + b"\n-----END FAKE TEST KEY-----\n",
    b"\x89PNG\r\n\x1a\n" + SECRET_LINES.encode() + b"\x00\xff\xfe",
    SECRET_LINES.encode() + b"\n" + SECRET_LINES.encode() * 2 + b"\n",
], ids=["key", "binary", "base64"])
@pytest.mark.parametrize("where", ["yaml", "list"])
def test_an_unparseable_file_is_never_quoted_beyond_one_line(minimal_account, content, where):
    if where == "yaml":
        target = minimal_account / "stray.yaml"
    else:
        target = minimal_account / "lists" / "l.csv"
        target.parent.mkdir()
        _list(minimal_account, "lists/l.csv")
    target.write_bytes(content)
    report = "\n".join(load_account(minimal_account, environ=PASSWORD).report.lines(minimal_account))
    assert report
    first = content.split(b"\n")[0].decode("utf-8", "replace")
    assert report.count(SECRET_LINES) <= (1 if SECRET_LINES in first else 0), report
    assert "END FAKE TEST KEY" not in report


def test_a_long_value_is_shortened_in_schema_findings(minimal_account):
    (minimal_account / "tags.yaml").write_text("tags: '" + "x" * 5000 + "'\n", encoding="utf-8")
    (got,) = findings(load_account(minimal_account, environ=PASSWORD), minimal_account)
    assert got[3] == "schema" and "(5002 characters)" in got[4] and len(got[4]) < 200
