"""The plugin as users meet it: found through its entry point, light to import, declaring what
it registers, turned on by ``app.setup_security()`` as Celery's, with its secrets masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import App
from kernel.plugin import ConfigurationError
from kernel.testing import check_distribution
from kernel_signing.shared import HmacSigner
from kernel_signing.testing import Pki
from kernel_signing.x509 import X509Signer


def test_kernel_lists_the_plugin_as_ok() -> None:
    listed = subprocess.run([sys.executable, "-m", "kernel", "plugins", "list", "--json"],
                            capture_output=True, text=True, check=True).stdout
    [info] = [i for i in json.loads(listed) if i["name"] == "signing"]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == "kernel-signing"


def test_the_distribution_declares_what_it_registers() -> None:
    check_distribution(Path(__file__).parents[1] / "pyproject.toml")


def test_the_entry_point_module_does_not_import_cryptography() -> None:
    code = ("import sys, kernel, kernel_signing.plugin; from kernel import App; "
            "App('t', config={'hmac_keys': ['x' * 16]}).codec; "
            "print(sorted(m for m in sys.modules if m.startswith(('cryptography', "
            "'kernel_signing.x509', 'kernel_signing.shared'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", "listing plugins or building a codec must not import " + out


def test_setup_security_turns_on_auth_as_celerys(pki: Pki) -> None:
    app = App("t", config=pki.settings())
    app.setup_security()
    assert app.conf.task_serializer == "auth" and app.conf.accept_content == ("auth",)
    assert app.codec.accept == frozenset({"application/data"})
    assert isinstance(app.codec.signer("auth"), X509Signer)
    body, ctype, cenc, _ = app.codec.encode([[1], {}, {}], "auth")
    assert (ctype, cenc) == ("application/data", "utf-8")
    assert app.codec.decode(body, ctype) == [[1], {}, {}]


def test_setup_security_takes_celerys_arguments(pki: Pki) -> None:
    app = App("t")
    app.setup_security(key=str(pki.encrypted.key_path), key_password=pki.password,
                       cert=str(pki.encrypted.cert_path), store=str(pki.store),
                       digest="sha512", serializer="json")
    body, ctype, _, _ = app.codec.encode({"x": 1}, "auth")
    assert app.codec.decode(body, ctype) == {"x": 1}


def test_setup_security_refuses_pickle_inside_signatures(pki: Pki) -> None:
    with pytest.raises(ConfigurationError, match="pickle can run code"):
        App("t", config=pki.settings()).setup_security(allowed_serializers=["json", "pickle"])


def test_the_hmac_signer_is_chosen_by_name() -> None:
    app = App("t", config={"hmac_keys": ["a long enough secret"], "accept_content": ["hmac"]})
    assert isinstance(app.codec.signer("hmac"), HmacSigner)
    assert app.codec.accept == frozenset({"application/x-kernel-hmac"})


def test_secrets_are_masked_where_settings_are_shown(pki: Pki) -> None:
    app = App("t", config={"hmac_keys": ["sekrit-sekrit-sekrit"],
                           "security_key_password": "open-sesame-123"})
    secrets = [name for name, spec in app.plugins.settings.items() if spec.secret]
    shown = repr(app.conf.public(secrets)) + repr(app.conf)
    assert "sekrit" not in shown and "open-sesame" not in shown


def test_setup_security_without_settings_is_a_sentence() -> None:
    with pytest.raises(ConfigurationError, match="set them"):
        App("t").setup_security()


def test_setup_security_reads_the_files_at_once(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        App("t", config={**pki.settings(), "security_key": str(tmp_path / "gone.key")}
            ).setup_security()
