"""Private search servers for tests, each on a free loopback port with its data in a directory
of its own::

    from kernel_elasticsearch.testing import NoidaServer, OsmemServer

    es = NoidaServer(tmp_path).start()
    es.url("results")          # elasticsearch://127.0.0.1:PORT/results
    os_ = OsmemServer(tmp_path).start()
    os_.url("results")         # opensearch://127.0.0.1:PORT/results

NoidaServer runs noida-db's binary (a native server speaking Elasticsearch 8's REST API) with
only its Elasticsearch side on; the binary, not noida-db's Python wrapper, which leaves the
binary running when it is killed. OsmemServer runs osmem-server (an in-memory server speaking
OpenSearch's API). Both come from PyPI (the plugin's test extra); without them the tests skip,
or fail under ``CI`` (`kernel.testing.servers.unavailable`).
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path

from kernel.testing.servers import ServerProcess, free_port, unavailable

__all__ = ["NoidaServer", "OsmemServer", "SearchServer"]


def _bundled(package: str, relative: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        unavailable(f"the tests need {package} (pip install -e 'plugins/elasticsearch[test]')")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        unavailable(f"{package} has no binary for this platform at {path}")
    return str(path)


class SearchServer(ServerProcess):
    """A search server on 127.0.0.1:`port`; `scheme` names it in URLs."""

    scheme = ""

    def __init__(self, command: list[str], directory: Path, port: int, name: str) -> None:
        self.host, self.port = "127.0.0.1", port
        super().__init__(command, log=directory / f"{name}.log", probe=self.answers,
                         cwd=directory, start_timeout=30, grace=5,
                         name=f"{name} on {self.host}:{self.port}")

    def url(self, index: str) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/{index}"

    def http(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def answers(self) -> bool:
        with urllib.request.urlopen(self.http(), timeout=1) as response:
            return "version" in json.loads(response.read())


class NoidaServer(SearchServer):
    """``NoidaServer(tmp_path).start()``: noida-db with only its Elasticsearch side, its data
    under `directory` (kept across a restart)."""

    scheme = "elasticsearch"

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        super().__init__(
            [_bundled("noida_db", "noida-db"), "start", "--only", "elasticsearch",
             "--elasticsearch-port", str(port), "--host", "127.0.0.1",
             "--data-dir", str(directory / "data")], directory, port, "noida-db")


class OsmemServer(SearchServer):
    """``OsmemServer(tmp_path).start()``: osmem-server, in memory (a restart empties it)."""

    scheme = "opensearch"

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        # It exits when its standard input closes unless told not to (tests give it none).
        super().__init__(
            [_bundled("osmem_server", "bin/osmem-server"), "-addr", f"127.0.0.1:{port}",
             "-no-stdin-watch"], directory, port, "osmem-server")
