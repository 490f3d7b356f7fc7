"""Errors end a command as one red sentence with exit status 2 (a traceback only on request),
and plugins can add commands without taking over built-in ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from kernel.errors import ConfigurationError


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("spec", ["no_such_module_here:app", "json:app"])
def test_a_bad_app_is_one_line_and_status_2(invoke: Callable[..., Result], spec: str) -> None:
    line = one_error_line(invoke("-A", spec, "call", "x"))
    assert spec.split(":")[0] in line


def test_traceback_flag_shows_the_traceback(invoke: Callable[..., Result]) -> None:
    result = invoke("--traceback", "-A", "no_such_module_here:app", "call", "x")
    assert isinstance(result.exception, ConfigurationError)


def test_a_broker_of_a_plugin_switched_off_says_how_to_switch_it_on(
        invoke: Callable[..., Result], env: dict[str, str]) -> None:
    env["KERNEL_DISABLE_PLUGINS"] = "redis"
    line = one_error_line(invoke("--broker", "rediss://localhost:6380/0", "call", "x"))
    assert "no transport for 'rediss'" in line and "switched off" in line
    assert "-p no:redis" in line and "install" not in line


def test_a_typo_in_the_scheme_gets_a_suggestion(invoke: Callable[..., Result]) -> None:
    line = one_error_line(invoke("--broker", "sqlit:///x.db", "purge", "-f"))
    assert "did you mean 'sqlite'" in line


def test_an_unusable_sqlite_path_is_one_line(invoke: Callable[..., Result]) -> None:
    one_error_line(invoke("--broker", "sqlite:////no/such/dir/kernel.db", "call", "x"))


def test_worker_needs_an_app(invoke: Callable[..., Result]) -> None:
    assert "-A module:app" in one_error_line(invoke("worker"))


def test_an_unknown_pool_is_one_line(invoke: Callable[..., Result], tasks_module: str) -> None:
    line = one_error_line(invoke("-A", f"{tasks_module}:app", "worker", "-P", "prefrok"))
    assert "did you mean 'prefork'" in line


def test_worker_graph_prints_the_bootsteps_as_dot(invoke: Callable[..., Result],
                                                  tasks_module: str) -> None:
    result = invoke("-A", f"{tasks_module}:app", "worker", "--graph")
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("digraph")
    assert "consumer" in result.stdout


PLUGIN_COMMANDS = """
    import click
    from kernel import App, hookimpl

    @click.command("hello")
    @click.argument("name")
    @click.pass_obj
    def hello(state, name):
        click.echo(f"hello {name} from {state.app().main}")

    @click.command("call")
    def fake_call():
        click.echo("hijacked")

    class Commands:
        __name__ = "greeter"

        @hookimpl
        def kernel_cli_commands(self):
            return [hello, fake_call]

    class Broken:
        __name__ = "broken-commands"

        @hookimpl
        def kernel_cli_commands(self):
            raise RuntimeError("no commands today")

    app = App("greeting-app", plugins=[Commands(), Broken()])
"""


def test_hook_kernel_cli_commands_adds_commands_but_never_replaces_built_ins(
        invoke: Callable[..., Result], make_module: Callable[[str], str]) -> None:
    spec = f"{make_module(PLUGIN_COMMANDS)}:app"
    result = invoke("-A", spec, "hello", "ada")
    assert result.exit_code == 0, result.output
    assert "hello ada from greeting-app" in result.stdout
    assert "'greeter' adds the command 'call', but that name is taken" in result.stderr
    assert "'broken-commands' could not add its commands: RuntimeError" in result.stderr

    listing = invoke("-A", spec, "--help")
    assert "hello" in listing.stdout

    built_in = invoke("-A", spec, "call", "x")
    assert built_in.exit_code == 0 and "hijacked" not in built_in.output


def test_an_unknown_command_is_a_usage_error(invoke: Callable[..., Result]) -> None:
    result = invoke("no-such-command")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_dash_a_may_also_follow_the_command(invoke: Callable[..., Result],
                                            tasks_module: str) -> None:
    result = invoke("worker", "-A", f"{tasks_module}:app", "--graph")
    assert result.exit_code == 0, result.output
    assert result.stdout.lstrip().startswith("digraph")

    twice = invoke("-A", f"{tasks_module}:app", "worker", "-A", "other:app", "--graph")
    assert twice.exit_code == 2 and "-A is given twice" in twice.stderr
