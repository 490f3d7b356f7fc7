"""The YAML serializer: PyYAML's safe dumper and safe loader, read and written as kombu does.

kombu writes ``yaml.safe_dump(obj)`` (block style) as UTF-8 and reads with ``yaml.safe_load``.
What that carries beyond JSON, kernel carries the same way: datetimes and dates as YAML
timestamps, bytes as ``!!binary``, sets as ``!!set``, ints of any size, and non-str dict keys.
What kombu's YAML refuses (times, UUIDs, Decimals, any other object) kernel refuses too, at send
time, with a sentence. libyaml's C dumper and loader serve when PyYAML was built with them.

Safety: only the safe loader is used, so a tag that would construct a Python object
(``!!python/object``, ``!!python/object/apply``...) is refused as a `DecodeError` naming it.
A cut body may still be a valid, shorter document (YAML has no framing, Celery's neither):
transports deliver whole bodies, and the task's signature check refuses the rest.
"""

from __future__ import annotations

from typing import Any, NoReturn

import yaml

from kernel.plugin import DecodeError

from kernel_yaml.plugin import CONTENT_TYPE

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _RefusingDumper(_Dumper):  # type: ignore[misc, valid-type]
    """The safe dumper, whose fallback for types it has no representer for raises TypeError
    with a sentence instead of PyYAML's RepresenterError."""


def _refuse(dumper: yaml.SafeDumper, value: Any) -> NoReturn:
    name = type(value).__name__
    raise TypeError(f"a {name} cannot be sent as YAML: Celery's YAML (PyYAML's safe dumper) "
                    f"carries None, bools, numbers, str, bytes, lists, dicts, sets, dates and "
                    f"datetimes; send it as a string, or use json (which carries UUIDs, "
                    f"Decimals and times)")


_RefusingDumper.add_representer(None, _refuse)


class YamlSerializer:
    """Stateless: each call makes its own dumper or loader (thread safe)."""

    name = "yaml"
    content_type = CONTENT_TYPE
    content_encoding = "utf-8"

    def dumps(self, obj: Any) -> bytes:
        text: str = yaml.dump(obj, Dumper=_RefusingDumper)
        return text.encode("utf-8")

    def loads(self, data: bytes) -> Any:
        if not data:
            # an empty document loads as None, but no sender writes one: None is "null".
            raise DecodeError("body is empty, not a YAML document")
        try:
            return yaml.load(data, Loader=_Loader)  # noqa: S506 - the safe loader
        except yaml.constructor.ConstructorError as exc:
            raise DecodeError(f"the YAML body was refused: {exc.problem}; kernel loads YAML "
                              f"with PyYAML's safe loader only, which builds plain data and "
                              f"never a Python object from a tag: send plain values") from None
        except (yaml.YAMLError, RecursionError) as exc:
            raise DecodeError(f"body is not valid YAML: {type(exc).__name__}: {exc}") from None
