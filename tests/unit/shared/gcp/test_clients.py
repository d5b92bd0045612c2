"""The storage client reads the environment for HTTP settings once, not on every request."""

from __future__ import annotations

import pytest

from shared.gcp.clients import reset_clients, storage_client

HTTP_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                  "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC")


@pytest.fixture
def plain_environment(monkeypatch, tmp_path):
    for name in HTTP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # anonymous credentials, nothing contacted
    reset_clients()
    yield monkeypatch
    reset_clients()


def test_with_nothing_for_requests_to_find_the_session_does_not_scan_the_environment_per_request(plain_environment):
    assert storage_client("p")._http.trust_env is False


@pytest.mark.parametrize("variable, value", [("HTTPS_PROXY", "http://proxy:3128"), ("no_proxy", "example.com")])
def test_a_proxy_in_the_environment_is_left_for_requests_to_apply_per_request(plain_environment, variable, value):
    plain_environment.setenv(variable, value)
    assert storage_client("p")._http.trust_env is True


@pytest.mark.parametrize("variables", [{"REQUESTS_CA_BUNDLE": "/etc/ssl/corporate.pem"},
                                       {"CURL_CA_BUNDLE": "/etc/ssl/corporate.pem"},
                                       {"REQUESTS_CA_BUNDLE": "/etc/ssl/corporate.pem", "CURL_CA_BUNDLE": "/other.pem"}])
def test_a_ca_bundle_in_the_environment_becomes_the_sessions_as_requests_would_choose_it(plain_environment, variables):
    for name, value in variables.items():
        plain_environment.setenv(name, value)
    session = storage_client("p")._http
    assert session.trust_env is False and session.verify == "/etc/ssl/corporate.pem"


def test_a_netrc_in_the_home_directory_is_honoured(plain_environment, tmp_path):
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert storage_client("p")._http.trust_env is True
