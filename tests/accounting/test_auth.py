"""API keys: hashing, lookup, the open mode, the keys file and the hash-key command."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from core.errors import Unauthenticated
from router.accounting.auth import Authenticator, hash_key, load_keys
from router.config.accounting import ApiKey, parse_keys
from router.keys_cli import main as hash_key_main


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def test_hash_is_salted_and_never_contains_the_key() -> None:
    first, second = hash_key("my-secret"), hash_key("my-secret")
    assert first != second  # a fresh salt each time
    assert first.startswith("sha256$")
    assert "my-secret" not in first


def test_the_right_key_names_its_tenant() -> None:
    auth = Authenticator([ApiKey("acme", hash_key("k-acme")), ApiKey("ops", hash_key("k-ops"), admin=True)])
    assert auth.authenticate(bearer("k-acme")).tenant == "acme"
    ops = auth.authenticate(bearer("k-ops"))
    assert (ops.tenant, ops.admin) == ("ops", True)
    assert auth.authenticate(bearer("k-acme")).tenant == "acme"  # from the remembered keys


@pytest.mark.parametrize(
    "metadata",
    [None, [], bearer("wrong"), [("authorization", "Basic k-acme")], [("authorization", "Bearer ")]],
)
def test_missing_or_wrong_keys_are_unauthenticated(metadata: list[tuple[str, str]] | None) -> None:
    auth = Authenticator([ApiKey("acme", hash_key("k-acme"))])
    with pytest.raises(Unauthenticated) as error:
        auth.authenticate(metadata)
    assert "k-acme" not in error.value.message


def test_no_keys_means_open_as_tenant_local() -> None:
    auth = Authenticator([])
    assert auth.open
    assert auth.authenticate(None).tenant == "local"
    assert "open" in auth.describe()


def test_repr_hides_the_hash() -> None:
    assert "sha256" not in repr(ApiKey("acme", hash_key("k")))


def test_keys_file_adds_to_configured_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f'keys:\n  - {{tenant: beta, key_sha256: "{hash_key("k-beta")}"}}\n')
    keys = load_keys([ApiKey("acme", hash_key("k-acme"))], str(path))
    assert [k.tenant for k in keys] == ["acme", "beta"]
    assert Authenticator(keys).authenticate(bearer("k-beta")).tenant == "beta"


def test_a_plain_key_in_config_is_refused() -> None:
    with pytest.raises(ValueError, match="hash-key"):
        parse_keys([{"tenant": "acme", "key_sha256": "plain-text-key"}], "keys")


def test_hash_key_command_reads_stdin_and_prints_an_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("k-from-stdin\n"))
    assert hash_key_main(["--tenant", "acme"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("- {tenant: acme, key_sha256: ")
    assert "k-from-stdin" not in out
    stored = out.split('"')[1]
    assert Authenticator([ApiKey("acme", stored)]).authenticate(bearer("k-from-stdin")).tenant == "acme"
