"""``kernel plugins list``: what is installed, what it provides, and its status."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

STD_PLUGINS = {
    "sqlite": {"transport": ["sqlite"], "result store": ["sqlite"]},
    "memory": {"transport": ["memory"], "result store": ["memory"]},
    "filesystem": {"result store": ["filesystem"]},
    "serializers": {"serializer": ["json", "pickle"]},
    "compression": {"compressor": ["zlib", "bzip2"]},
    "pools": {"pool": ["solo", "threads", "prefork", "asyncio"]},
}


def by_name(result: Result) -> dict[str, dict[str, object]]:
    assert result.exit_code == 0, result.output
    return {info["name"]: info for info in json.loads(result.stdout)}


def provided(info: dict[str, object]) -> dict[str, set[str]]:
    provides = info["provides"]
    assert isinstance(provides, dict)
    # "sqlite (sqlite)" and "sqlite" both name the sqlite record
    return {kind: {name.split(" ")[0] for name in names} for kind, names in provides.items()}


def test_json_lists_every_std_plugin_with_its_capabilities(invoke: Callable[..., Result]) -> None:
    infos = by_name(invoke("plugins", "list", "--json"))
    for name, expected in STD_PLUGINS.items():
        assert name in infos, f"std plugin {name} missing from {sorted(infos)}"
        info = infos[name]
        assert info["status"] == "ok", info
        assert info["distribution"] == "kernel"
        assert info["version"]
        have = provided(info)
        for kind, names in expected.items():
            assert set(names) <= have.get(kind, set()), f"{name}: {kind} {have}"


def test_table_shows_plugin_distribution_capabilities_and_status(
        invoke: Callable[..., Result]) -> None:
    result = invoke("plugins", "list")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "plugin" in line)
    for column in ("plugin", "distribution", "version", "provides", "status"):
        assert column in header
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert set(STD_PLUGINS) <= set(rows)
    assert "transport: sqlite" in rows["sqlite"] and "result store: sqlite" in rows["sqlite"]
    assert "pool: solo, threads" in rows["pools"] or "prefork" in rows["pools"]
    assert all(" ok " in rows[name] for name in STD_PLUGINS)


def test_dash_p_disables_a_plugin(invoke: Callable[..., Result]) -> None:
    infos = by_name(invoke("-p", "no:serializers", "plugins", "list", "--json"))
    assert infos["serializers"]["status"] == "disabled"
    assert infos["serializers"]["provides"] == {}
    assert infos["sqlite"]["status"] == "ok"

    table = invoke("-p", "no:serializers", "plugins", "list")
    row = next(line for line in table.stdout.splitlines() if "serializers" in line)
    assert "disabled" in row


def test_environment_variable_disables_a_plugin(invoke: Callable[..., Result],
                                                env: dict[str, str]) -> None:
    env["KERNEL_DISABLE_PLUGINS"] = "compression,memory"
    infos = by_name(invoke("plugins", "list", "--json"))
    assert infos["compression"]["status"] == "disabled"
    assert infos["memory"]["status"] == "disabled"


def test_disabling_an_unknown_plugin_is_an_error_with_a_suggestion(
        invoke: Callable[..., Result]) -> None:
    result = invoke("-p", "no:serializer", "plugins", "list")
    assert result.exit_code == 2
    assert "'serializer'" in result.stderr and "did you mean 'serializers'" in result.stderr


def test_dash_p_needs_the_no_prefix(invoke: Callable[..., Result]) -> None:
    result = invoke("-p", "serializers", "plugins", "list")
    assert result.exit_code == 2
    assert "-p no:NAME" in result.stderr


def test_a_broken_plugin_is_listed_as_failed_and_the_rest_still_work(
        invoke: Callable[..., Result], make_module: Callable[[str], str]) -> None:
    module = make_module("""
        from kernel import App, hookimpl

        class Broken:
            __name__ = "broken"

            @hookimpl
            def kernel_transports(self):
                raise RuntimeError("cannot reach the licence server")

        app = App("with-broken", plugins=[Broken()])
    """)
    infos = by_name(invoke("-A", f"{module}:app", "plugins", "list", "--json"))
    assert infos["broken"]["status"] == "failed"
    assert "cannot reach the licence server" in str(infos["broken"]["error"])
    assert infos["sqlite"]["status"] == "ok"

    table = invoke("-A", f"{module}:app", "plugins", "list")
    row = next(line for line in table.stdout.splitlines() if "broken" in line)
    assert "failed: kernel_transports raised RuntimeError" in row


def test_listing_needs_no_broker(invoke: Callable[..., Result], env: dict[str, str]) -> None:
    env["KERNEL_BROKER_URL"] = "redis://nowhere.invalid:1/0"
    env["KERNEL_RESULT_BACKEND"] = "nosuchscheme://x"
    assert "sqlite" in by_name(invoke("plugins", "list", "--json"))
