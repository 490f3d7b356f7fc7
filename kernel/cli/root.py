"""The ``kernel`` command group: global options, the App a command works on, commands added by
plugins, and the rule that a `KernelError` ends a command as one red sentence with status 2.

Commands receive a `CliState` as ``ctx.obj`` (``@click.pass_obj``); plugin commands do too, so
``state.app()`` gives them the App that ``-A``, ``-p``, ``--broker`` and ``--results`` describe.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kernel import console
from kernel.errors import ConfigurationError, KernelError, PluginError

if TYPE_CHECKING:
    from kernel.app import App
    from kernel.plugins import PluginManager

F = TypeVar("F", bound=Callable[..., Any])

#: exit status of a command stopped by a KernelError (the same as click's usage errors).
EXIT_KERNEL_ERROR = 2
DISABLE_ENV = "KERNEL_DISABLE_PLUGINS"


@dataclass
class CliState:
    """What the global options say, and the App built from them on first use."""

    app_spec: str | None = None
    #: plugins disabled with ``-p no:NAME`` (KERNEL_DISABLE_PLUGINS is read by PluginManager).
    disabled: tuple[str, ...] = ()
    broker: str | None = None
    results: str | None = None
    _app: App | None = field(default=None, repr=False)
    _plugins: PluginManager | None = field(default=None, repr=False)
    _commands: dict[str, click.Command] | None = field(default=None, repr=False)

    def environment(self) -> dict[str, str]:
        """Variables that carry the options to code that reads the environment: an app module
        imported by ``-A``, pool children, the worker the demo starts."""
        env: dict[str, str] = {}
        if self.disabled:
            current = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
            env[DISABLE_ENV] = ",".join(dict.fromkeys([*current, *self.disabled]))
        if self.broker:
            env["KERNEL_BROKER_URL"] = self.broker
        if self.results:
            env["KERNEL_RESULT_BACKEND"] = self.results
        return env

    def app(self) -> App:
        """The App of ``-A``, or without it an App configured from the environment."""
        if self._app is None:
            from kernel.app import App, load_app

            if self.app_spec:
                app = load_app(self.app_spec)
                # The app's own settings beat the environment, so the options are applied here.
                if self.broker or self.results:
                    app.close()
                    for name, value in (("broker_url", self.broker),
                                        ("result_backend", self.results)):
                        if value:
                            setattr(app.conf, name, value)
                            app.conf.sources[name] = "command line"
            else:
                app = App("kernel", broker=self.broker, results=self.results,
                          disable=self.disabled)
                for name, value in (("broker_url", self.broker),
                                    ("result_backend", self.results)):
                    if value:
                        app.conf.sources[name] = "command line"
            check_disabled(self.disabled, app.plugins)
            self._app = app
        return self._app

    def require_app(self, command: str) -> App:
        if not self.app_spec:
            raise ConfigurationError(
                f"kernel {command} needs the app whose tasks it runs: give -A module:app")
        return self.app()

    def plugin_manager(self) -> PluginManager:
        """The app's plugins with ``-A``; without it, the installed plugins alone (no App, no
        broker), so listing plugins works on a machine with nothing configured."""
        if self.app_spec:
            return self.app().plugins
        if self._plugins is None:
            from kernel.plugins import PluginManager

            self._plugins = PluginManager(disabled=self.disabled)
            check_disabled(self.disabled, self._plugins)
        return self._plugins

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def check_disabled(names: Sequence[str], plugins: PluginManager) -> None:
    """``-p no:NAME`` with a NAME no plugin has is a typo, not a silent no-op."""
    infos = plugins.infos()
    known = {i.name for i in infos} | {i.distribution for i in infos if i.distribution}
    for name in names:
        if name not in known:
            close = get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(f"-p no:{name}: no plugin is named {name!r}{hint} "
                              f"(see kernel plugins list)")


def collect_plugin_commands(plugins: PluginManager, taken: set[str]) -> dict[str, click.Command]:
    """Commands from ``kernel_cli_commands``, plugin by plugin so one broken plugin costs only
    its own commands; a name already taken is skipped with a warning."""
    found: dict[str, click.Command] = {}
    for impl in plugins.hook.kernel_cli_commands.get_hookimpls():
        try:
            commands = list(impl.function() or ())
        except Exception as exc:  # noqa: BLE001 - isolation: a plugin bug must not stop the CLI
            console.warning(f"plugin {impl.plugin_name!r} could not add its commands: "
                           f"{type(exc).__name__}: {exc}")
            continue
        for command in commands:
            if not isinstance(command, click.Command) or not command.name:
                console.warning(f"plugin {impl.plugin_name!r} returned {command!r} from "
                               f"kernel_cli_commands, which is not a named click command; skipped")
            elif command.name in taken or command.name in found:
                console.warning(f"plugin {impl.plugin_name!r} adds the command {command.name!r}, "
                               f"but that name is taken; skipped")
            else:
                found[command.name] = command
    return found


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the life of one command, then put the old values back."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def get_state(ctx: click.Context) -> CliState:
    """The state of this invocation, made from the root's parameters on first use (plugin
    commands are looked up before the group's own callback runs)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        params = root.params
        state = CliState(
            app_spec=params.get("app_spec"),
            disabled=tuple(params.get("disabled") or ()),
            broker=params.get("broker"),
            results=params.get("results"),
        )
        root.with_resource(patched_environ(state.environment()))
        root.call_on_close(state.close)
        root.obj = state
    return root.obj


def _set_app(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    state = get_state(ctx)
    if state.app_spec and state.app_spec != value:
        raise click.UsageError(f"-A is given twice ({state.app_spec} and {value}); give it once")
    state.app_spec = value


def app_option(command: F) -> F:
    """``-A`` after the command name as well (``kernel worker -A proj:app``), as people type it."""
    return click.option("-A", "--app", metavar="MODULE:APP", expose_value=False,
                        callback=_set_app, is_eager=True,
                        help="The app to use (the same as -A before the command).")(command)


def _parse_disable(ctx: click.Context, param: click.Parameter,
                   values: Sequence[str]) -> tuple[str, ...]:
    names = []
    for value in values:
        prefix, sep, name = value.partition(":")
        if prefix != "no" or not sep or not name.strip():
            raise click.BadParameter(f"{value!r}: write -p no:NAME to disable the plugin NAME",
                                     ctx, param)
        names.append(name.strip())
    return tuple(names)


class KernelGroup(click.Group):
    """A group that adds plugin commands and turns KernelErrors into one-line errors."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._plugin_commands(ctx).get(cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        try:
            names |= set(self._plugin_commands(ctx))
        except KernelError:
            pass  # help must still show when the app named by -A cannot load
        return sorted(names)

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        state = get_state(ctx)
        if state._commands is None:
            state._commands = collect_plugin_commands(state.plugin_manager(), set(self.commands))
        return state._commands

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KernelError as exc:
            if ctx.params.get("show_traceback"):
                raise
            console.error(str(exc) or type(exc).__name__)
            ctx.exit(EXIT_KERNEL_ERROR)


@click.group(cls=KernelGroup, context_settings={"help_option_names": ["-h", "--help"]})
# Eager, so `kernel -A proj:app --help` sees them and lists the app's plugin commands.
@click.option("-A", "--app", "app_spec", metavar="MODULE:APP", is_eager=True,
              help="The app to use, e.g. proj.tasks:app.")
@click.option("-p", "disabled", metavar="no:NAME", multiple=True, callback=_parse_disable,
              is_eager=True,
              help="Disable the plugin NAME (repeatable); also KERNEL_DISABLE_PLUGINS=a,b.")
@click.option("--broker", metavar="URL", is_eager=True,
              help="Broker URL (overrides the configuration).")
@click.option("--results", metavar="URL", is_eager=True,
              help="Result store URL (overrides the configuration).")
@click.option("--traceback", "show_traceback", is_flag=True,
              help="Show the full traceback of an error instead of one line.")
@click.version_option(package_name="kernel", prog_name="kernel")
@click.pass_context
def cli(ctx: click.Context, /, **_options: Any) -> None:
    """kernel: a distributed task queue built as a plugin microkernel.

    With no -A and nothing configured, the broker and the result store are the SQLite file
    ./kernel.db (KERNEL_BROKER_URL and KERNEL_RESULT_BACKEND change that).
    """
    get_state(ctx)
