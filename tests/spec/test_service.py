"""The `service` keys for ingress hardening: connection and AUTH limits, API body limit, HTTPS on
API listeners (tls: implicit | none; starttls refused there), and the base URL of mailed links."""
from __future__ import annotations

import pytest

from mailcore.spec import load_account
from tests.support.helpers import edit_yaml


def issues(config) -> list[tuple[str, str]]:
    return [(i.path, i.message) for _, i in load_account(config).report.errors]


def with_service(config, **changes):
    def edit(d):
        for key, value in changes.items():
            if key == "listeners":
                d["service"]["listeners"] = value
            elif key == "limits":
                d["service"]["limits"].update(value)
            else:
                d["service"][key] = value
    edit_yaml(config / "service.yaml", edit)
    return config


def test_the_example_service_section_is_valid_and_api_listeners_default_to_plain_http(example_config, example_env):
    loaded = load_account(example_config)
    assert loaded.report.ok, loaded.report.lines()
    kinds = {(li.kind, li.tls) for li in loaded.spec.service.listeners}
    assert ("api", "none") in kinds and ("smtp", "starttls") in kinds


def test_new_limits_and_base_urls_are_read(example_config, example_env):
    with_service(example_config, base_url="https://mail.example.com/", limits={
        "max_connections": 2000, "max_connections_per_ip": 20, "command_timeout_seconds": 120,
        "data_timeout_seconds": 60, "auth_ip_lockout": 5, "auth_user_lockout": 15, "api_max_body_bytes": 1048576},
        listeners=[{"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:8443", "tls": "implicit",
                    "base_url": "https://dm.example.com:8443/"}])
    loaded = load_account(example_config)
    assert loaded.report.ok, loaded.report.lines()
    svc = loaded.spec.service
    assert svc.base_url == "https://mail.example.com/" and svc.limits["max_connections_per_ip"] == 20
    [li] = svc.listeners
    assert (li.tls, li.base_url) == ("implicit", "https://dm.example.com:8443/")


@pytest.mark.parametrize("changes", [
    {"listeners": [{"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:8080", "tls": "starttls"}]},
    {"listeners": [{"region": "cn-hangzhou", "kind": "smtp", "listen": "127.0.0.1:25", "base_url": "https://x.example/"}]},
    {"listeners": [{"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:8080", "base_url": "javascript:alert(1)"}]},
    {"base_url": "https://mail.example.com/?next=evil"},
    {"base_url": "ftp://mail.example.com/"},
    {"limits": {"max_connections": 0}},
    {"limits": {"data_timeout_seconds": 0}},
    {"limits": {"api_max_body_bytes": 10}},
    {"limits": {"max_connectons": 10}},
], ids=["starttls-on-api", "base-url-on-smtp", "base-url-scheme", "base-url-query", "base-url-ftp", "zero-connections",
        "zero-timeout", "tiny-body", "misspelt"])
def test_bad_service_settings_are_refused(example_config, example_env, changes):
    with_service(example_config, **changes)
    found = issues(example_config)
    assert found and all("service" in str(path) for path, _ in found), found
