"""Reading what users write: plugin options (from configuration or a URL's query), rates,
durations, TLS settings, and URLs with their credentials masked.

Every reader turns a wrong value into a `ConfigurationError` that names the option, its owner
and what was expected, so no plugin writes its own "must be a number" checks.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from kernel.errors import ConfigurationError

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*$")


class OptionReader:
    """Typed access to one plugin's options (``transport_options``, ``result_backend_options``,
    a URL's query), each read with a default: ``OptionReader(options, "Redis transport")``.

    Values may be native (from Python configuration) or strings (from a URL or the
    environment); both are accepted.
    """

    def __init__(self, options: Mapping[str, Any], owner: str) -> None:
        self.options = options
        self.owner = owner

    def _fail(self, name: str, expected: str, value: Any) -> ConfigurationError:
        return ConfigurationError(f"{self.owner} option {name!r} must be {expected}, got "
                                  f"{value!r}")

    def get(self, name: str, default: T) -> Any | T:
        return self.options.get(name, default)

    def number(self, name: str, default: float, *, minimum: float | None = None,
               positive: bool = False) -> float:
        value = self.options.get(name, default)
        expected = "a positive number" if positive else (
            "a number" if minimum is None else f"a number of at least {minimum}")
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise self._fail(name, expected, value) from None
        if (positive and number <= 0) or (minimum is not None and number < minimum):
            raise self._fail(name, expected, value)
        return number

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.options.get(name, default)
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            number = int(value)
        except (TypeError, ValueError):
            raise self._fail(name, "a whole number", value) from None
        if minimum is not None and number < minimum:
            raise self._fail(name, f"a whole number of at least {minimum}", value)
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self.options.get(name, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self._fail(name, "true or false", value)

    def duration(self, name: str, default: float | None) -> float | None:
        """Seconds: a number, or a string such as ``"30"``, ``"250ms"``, ``"5m"``, ``"1h"``."""
        value = self.options.get(name, default)
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError:
            raise self._fail(name, "a duration in seconds (e.g. 30, '250ms', '5m')",
                             value) from None

    def text(self, name: str, default: str) -> str:
        value = self.options.get(name, default)
        if not isinstance(value, str):
            raise self._fail(name, "a string", value)
        return value

    def strings(self, name: str, default: Sequence[str]) -> list[str]:
        """A list: a sequence of strings, or one string of comma-separated items."""
        value = self.options.get(name, default)
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise self._fail(name, "a list of strings (or one comma-separated string)", value)

    def unknown(self, known: Sequence[str]) -> None:
        """Refuse options nobody reads, naming the closest known one."""
        from difflib import get_close_matches

        for name in self.options:
            if name not in known:
                close = get_close_matches(name, list(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigurationError(f"unknown {self.owner} option {name!r}{hint}")


def url_query(url: str) -> tuple[str, dict[str, str]]:
    """``(url without its query, the query's parameters)``: options given in the URL."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="")), dict(parse_qsl(parts.query))


def parse_duration(value: Any) -> float:
    """Seconds from a number or ``"<number>[ms|s|m|h|d]"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(value)
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError(value)
    return seconds


def parse_rate(text: str | float) -> float:
    """``"10/s"``, ``"100/m"``, ``"1000/h"`` (or a number: per second) → tasks per second."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        rate = float(text)
    else:
        match = _RATE.match(str(text))
        if not match:
            raise ConfigurationError(f"rate limit {text!r} is not N/s, N/m or N/h (e.g. '10/s')")
        rate = float(match.group(1)) / _UNITS[match.group(2)]
    if rate <= 0:
        raise ConfigurationError(f"rate limit {text!r} must be above zero")
    return rate


# ------------------------------------------------------------------------------- credentials

#: query parameters and connection-string fields whose value is a secret.
_SECRET = re.compile(r"(?i)(password|passwd|secret|token|accountkey|sharedaccesssignature|"
                     r"sig|api_?key|access_?key)")


def aws_error(response: Mapping[str, Any]) -> tuple[str, str]:
    """The code and message of an AWS error reply (botocore's ``ClientError.response``), read
    from the body when botocore could not parse it: moto answers a refused signature in IAM's
    XML, which the JSON protocols (DynamoDB's, SQS's) do not expect."""
    error = response.get("Error", {})
    code, message = str(error.get("Code", "Unknown")), str(error.get("Message", ""))
    inner = re.search(r"<Code>([^<]+)</Code>", message)
    if inner:
        said = re.search(r"<Message>([^<]*)</Message>", message)
        return inner.group(1), said.group(1) if said else ""
    return code, message


#: setting and option names whose values are secrets, wherever settings are shown.
_SECRET_NAME = re.compile(r"password|secret|token|key|credential|auth", re.I)


def mask_setting(name: str, value: Any) -> Any:
    """A setting's value as it may be shown (JSON-able): URLs masked, values of secret-like
    names (and keys of dicts) hidden, other objects by their repr."""
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    if isinstance(value, dict):
        return {k: "********" if _SECRET_NAME.search(str(k)) else mask_setting(str(k), v)
                for k, v in value.items()}
    if _SECRET_NAME.search(name) and isinstance(value, str):
        return "********"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [mask_setting(name, v) for v in value]
    return repr(value)


def mask_url(url: str) -> str:
    """`url` with every secret masked, for banners, logs and errors: the password of
    ``scheme://user:secret@host`` (several hosts too), and the values of query parameters and
    ``Key=value;`` connection-string fields named like a secret (``password``,
    ``AccountKey``, ``token``, ...)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _mask_fields(url)
    # The host part ends at the path or, with no path, at the query (redis://:pw@h?db=2).
    head, mark, query = rest.partition("?")
    cut = head.find("/")
    netloc, tail = (head, "") if cut < 0 else (head[:cut], head[cut:])
    if "@" not in netloc and cut > 0 and ":" in netloc and "@" in head:
        # A password with an unquoted "/" (AWS secret keys have them) ends the host part
        # early: the credentials run to the last "@" before the query. (A path with an "@"
        # after a host:port is masked too: better than showing part of a secret.)
        cut = head.find("/", head.rfind("@"))
        netloc, tail = (head, "") if cut < 0 else (head[:cut], head[cut:])
    tail += mark + query
    if "@" in netloc and "=" not in netloc:
        creds, _, hosts = netloc.rpartition("@")
        user, colon, _ = creds.partition(":")
        rest = (f"{user}:**@{hosts}" if colon else f"**@{hosts}") + tail
    return f"{scheme}://{_mask_fields(rest)}"


def _mask_fields(text: str) -> str:
    return re.sub(r"(?<![^?&;])([^=&;?]+)=([^&;]*)",
                  lambda m: f"{m.group(1)}=**" if _SECRET.search(m.group(1)) and m.group(2)
                  else m.group(0), text)


# ------------------------------------------------------------------------------------- TLS

_VERIFY_MODES = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                 "none": ssl.CERT_NONE}
#: TLS settings a plugin may accept, as Celery's ``broker_use_ssl`` names them.
TLS_KEYS = ("ca_certs", "certfile", "keyfile", "cert_reqs", "check_hostname", "server_hostname",
            "ciphers")
_FILES = ("ca_certs", "certfile", "keyfile")


def verify_mode(value: Any, setting: str) -> ssl.VerifyMode:
    """A TLS ``cert_reqs`` setting (Celery's ``broker_use_ssl`` form): an ``ssl.CERT_*``
    constant or its name (``required``, ``CERT_REQUIRED``, ...); `setting` names it in the
    error."""
    if isinstance(value, ssl.VerifyMode):
        return value
    name = str(value).lower().removeprefix("cert_")
    if name not in _VERIFY_MODES:
        raise ConfigurationError(f"{setting} must be ssl.CERT_REQUIRED, CERT_OPTIONAL or "
                                 f"CERT_NONE (or required, optional or none), got {value!r}")
    return _VERIFY_MODES[name]


def tls_settings(values: Any, setting: str, *, accept: Sequence[str] = TLS_KEYS,
                 prefix: str = "") -> dict[str, Any]:
    """Celery-style TLS settings checked and normalised: `values` is a mapping whose keys are
    `accept` (each written with `prefix`, e.g. ``ssl_`` for redis-py's names), the same keys
    come back with ``cert_reqs`` an ``ssl.VerifyMode`` and ``check_hostname`` a bool.
    Certificate files must exist, a key needs its certificate, and a hostname check needs
    verification; each mistake is a sentence naming `setting`."""
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{setting} must be a mapping of "
                                 f"{', '.join(prefix + k for k in accept)}, got {values!r}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        bare = str(key).removeprefix(prefix) if str(key).startswith(prefix) else None
        if bare not in accept:
            raise ConfigurationError(f"unknown TLS setting {key!r} in {setting}; use "
                                     f"{', '.join(prefix + k for k in accept)}")
        if bare == "cert_reqs":
            value = verify_mode(value, f"{setting} {key}")
        elif bare == "check_hostname":
            value = OptionReader({key: value}, setting).boolean(str(key), False)
        elif bare in _FILES and value is not None and not Path(str(value)).is_file():
            raise ConfigurationError(f"{setting} {key} names {value!r}, which is not a readable "
                                     f"file")
        out[str(key)] = value
    if out.get(prefix + "keyfile") and not out.get(prefix + "certfile"):
        raise ConfigurationError(f"{setting} {prefix}keyfile needs {prefix}certfile (the "
                                 f"client certificate the key belongs to)")
    if out.get(prefix + "cert_reqs") == ssl.CERT_NONE and (
            out.get(prefix + "server_hostname") or out.get(prefix + "check_hostname")):
        raise ConfigurationError(f"{setting}: checking the server's hostname needs its "
                                 f"certificate checked, which cert_reqs CERT_NONE skips: drop one")
    return out
