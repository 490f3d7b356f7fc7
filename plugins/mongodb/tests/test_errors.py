"""Bad input, each one sentence with what to do and the password masked: an unreachable server,
credentials, a record over MongoDB's 16 MiB, a document that does not decode, a URL that is
not MongoDB's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from pymongo import errors

from kernel import App
from kernel.plugin import (
    ConfigurationError,
    ConnectionFailed,
    DecodeError,
    KernelError,
    ResultRefused,
    ResultTooLarge,
    mask_url,
    task_key,
)
from kernel.testing.workers import running_worker
from kernel_mongodb.connection import failure
from kernel_mongodb.results import MongoResultStore
from kernel_mongodb.testing import NxServer

Make = Callable[..., MongoResultStore]
SECRET = "s3cret-pw"


def _one_sentence(message: str) -> None:
    assert "\n" not in message and SECRET not in message, message
    assert "Traceback" not in message and "Topology Description" not in message, message


@pytest.mark.integration
def test_an_unreachable_server(make_store: Make) -> None:
    store = make_store(f"mongodb://kernel:{SECRET}@127.0.0.1:1/db",
                       broker_connection_timeout=1)
    start = time.monotonic()
    with pytest.raises(ConnectionFailed, match="cannot reach the MongoDB result store") as caught:
        store.set([("k", b"v")], None)
    _one_sentence(str(caught.value))
    assert "kernel:**@127.0.0.1:1" in str(caught.value)
    assert time.monotonic() - start < 10, "serverSelectionTimeoutMS follows connection_timeout"
    with pytest.raises(ConnectionFailed):
        store.get("k")


@pytest.mark.integration
def test_credentials_nx_27017_cannot_check(nx: NxServer, make_store: Make) -> None:
    """nx-27017 has no authentication: it answers SCRAM's first step without the payload,
    and pymongo fails in its handshake (KeyError). That comes out as one sentence, the
    password masked; what a MongoDB says to wrong credentials is below."""
    store = make_store(f"mongodb://bob:{SECRET}@{nx.host}:{nx.port}/db",
                       broker_connection_timeout=2)
    with pytest.raises(ConnectionFailed, match="check the URL's credentials") as caught:
        store.get("k")
    _one_sentence(str(caught.value))


@pytest.mark.unit
def test_wrong_credentials_as_mongodb_refuses_them() -> None:
    refused = errors.OperationFailure("Authentication failed.", code=18)
    error = failure(refused, f"mongodb://bob:{SECRET}@db.example.com/results", "read a result")
    assert isinstance(error, ConfigurationError)
    assert str(error).startswith("MongoDB at mongodb://bob:**@db.example.com/results refused "
                                 "the credentials (Authentication failed.)")
    _one_sentence(str(error))


@pytest.mark.unit
def test_failures_name_what_to_do() -> None:
    url = f"mongodb://u:{SECRET}@h/db"
    lost = failure(errors.ServerSelectionTimeoutError(
        "h:27017: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: "
        "20000.0ms), Timeout: 1.0s, Topology Description: <TopologyDescription ...>"), url,
        "store results")
    assert isinstance(lost, ConnectionFailed)
    assert str(lost) == ("cannot reach the MongoDB result store mongodb://u:**@h/db to store "
                         "results (h:27017: [Errno 111] Connection refused); check the server "
                         "runs and the URL's host and port")
    refused = failure(errors.OperationFailure("not authorized on db", code=13), url, "count")
    assert isinstance(refused, ConfigurationError)
    assert "does not let the user count (not authorized on db); grant it readWrite" in \
        str(refused)


@pytest.mark.unit
def test_urls_and_repr() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'mongodb'"):
        App("t", broker="memory://", results="mongodb+nope://h/db").backend  # noqa: B018
    store = App("t", broker="memory://", results=f"mongodb://u:{SECRET}@h1,h2:27018/db").backend
    assert isinstance(store.store, MongoResultStore)
    assert SECRET not in repr(store.store) and "u:**@h1,h2:27018" in repr(store.store)
    srv = App("t", broker="memory://", results="mongodb+srv://u:p@cluster.example.com/prod")
    assert isinstance(srv.backend.store, MongoResultStore), "no DNS looked up until first use"
    assert srv.backend.store.settings.database == "prod"


@pytest.mark.unit
def test_mongodb_urls_are_masked_as_banners_and_logs_show_them() -> None:
    """The worker's banner and kernel's logs show URLs through mask_url."""
    for url, shown in ((f"mongodb+srv://u:{SECRET}@cluster.example.com/db?authSource=admin",
                        "mongodb+srv://u:**@cluster.example.com/db?authSource=admin"),
                       (f"mongodb://u:{SECRET}@h1:1,h2:2/db?replicaSet=rs0",
                        "mongodb://u:**@h1:1,h2:2/db?replicaSet=rs0"),
                       (f"mongodb://h/db?password={SECRET}", "mongodb://h/db?password=**")):
        assert mask_url(url) == shown


@pytest.mark.unit
def test_settings_that_hold_a_password_are_masked() -> None:
    app = App("t", broker="memory://", results=f"mongodb://u:{SECRET}@h/db",
              config={"mongodb_backend_settings": {"user": "u", "password": SECRET}})
    secrets = [name for name, spec in app.plugins.settings.items() if spec.secret]
    assert secrets == ["mongodb_backend_settings"], "declared secret: it may hold a password"
    assert SECRET not in str(app.conf.public(secrets))
    store = app.backend.store
    assert isinstance(store, MongoResultStore)
    assert store.settings.client["password"] == SECRET, "Celery's user and password keys"
    wrong = App("t", broker="memory://", results="mongodb://h/db", config={
        "mongodb_backend_settings": {"options": "maxPoolSize=3"}})
    with pytest.raises(ConfigurationError, match="must be a dict of MongoClient options"):
        wrong.backend  # noqa: B018


@pytest.mark.unit
def test_host_and_port_in_the_settings_replace_the_urls() -> None:
    app = App("t", broker="memory://", results=f"mongodb://u:{SECRET}@old:1/db?w=1",
              config={"mongodb_backend_settings": {"host": "new", "port": 27018}})
    store = app.backend.store
    assert isinstance(store, MongoResultStore)
    assert store.settings.client["host"] == f"mongodb://u:{SECRET}@new:27018/db?w=1", \
        "Celery's rule: the settings' host and port, the URL's credentials and options"


@pytest.mark.integration
def test_a_record_over_16_mib_is_result_too_large(mongo_url: str, make_store: Make) -> None:
    store = make_store(mongo_url)
    backend = App("t", broker="memory://").backend
    big, small = uuid.uuid4().hex, uuid.uuid4().hex
    items = [(task_key(big), backend.encode(backend.record(big, "SUCCESS", "x" * (17 << 20)))),
             (task_key(small), backend.encode(backend.record(small, "SUCCESS", 1)))]
    with pytest.raises(ResultTooLarge, match="larger than MongoDB .* keeps in one document") \
            as caught:
        store.set(items, None)
    _one_sentence(str(caught.value))
    assert store.get(task_key(small)) is not None, "the rest of the batch is stored"
    assert store.get(task_key(big)) is None


@pytest.mark.integration
def test_a_task_whose_result_is_too_large_fails_with_the_reason(mongo_url: str) -> None:
    app = App("big", broker="memory://", results=mongo_url)

    @app.task(name="big.blob")
    def blob() -> str:
        return "x" * (17 << 20)

    try:
        with running_worker(app, concurrency=1):
            result = blob.delay()
            with pytest.raises(ResultTooLarge):
                result.get(timeout=30)
            assert result.state == "FAILURE", "the caller learns why, instead of waiting"
    finally:
        app.close()


@pytest.mark.integration
def test_a_task_whose_record_bson_cannot_hold_fails_with_the_reason(mongo_url: str) -> None:
    app = App("huge-int", broker="memory://", results=mongo_url,
              config={"result_extended": True})

    @app.task(name="huge.int")
    def echo(value: int) -> int:
        return value

    try:
        with running_worker(app, concurrency=1):
            result = echo.delay(2 ** 70)  # JSON carries it; BSON has no integer that wide
            with pytest.raises(ResultRefused, match="BSON has no place"):
                result.get(timeout=30)
            assert result.state == "FAILURE", "the caller learns why, instead of waiting"
    finally:
        app.close()


@pytest.mark.integration
def test_a_document_that_does_not_decode(nx: NxServer, mongo_url: str, make_store: Make) -> None:
    store = make_store(mongo_url)
    bad_result, no_status = uuid.uuid4().hex, uuid.uuid4().hex
    with nx.client() as client:
        tasks = client[mongo_url.rsplit("/", 1)[1]]["celery_taskmeta"]
        tasks.insert_one({"_id": bad_result, "status": "SUCCESS", "result": "{not json",
                          "date_done": None, "traceback": None, "children": []})
        tasks.insert_one({"_id": no_status, "result": "1"})
    with pytest.raises(DecodeError, match="result serializer 'json'.*check result_serializer") \
            as caught:
        store.get(task_key(bad_result))
    _one_sentence(str(caught.value))
    with pytest.raises(DecodeError, match="has no status"):
        store.get(task_key(no_status))


@pytest.mark.integration
def test_a_value_that_is_not_a_record_is_refused(mongo_url: str, make_store: Make) -> None:
    with pytest.raises(DecodeError, match="does not decode"):
        make_store(mongo_url).set([(task_key(uuid.uuid4().hex), b"opaque")], None)


@pytest.mark.integration
def test_a_value_bson_cannot_hold(mongo_url: str, make_store: Make) -> None:
    backend = App("t", broker="memory://", config={"result_extended": True}).backend
    task_id = uuid.uuid4().hex
    record = backend.record(task_id, "SUCCESS", 1, extra={"args": [2 ** 70]})
    with pytest.raises(KernelError, match="BSON has no place for a value") as caught:
        make_store(mongo_url).set([(task_key(task_id), backend.encode(record))], None)
    _one_sentence(str(caught.value))


@pytest.mark.integration
def test_indexes_refused_is_a_warning_with_the_password_masked(
        nx: NxServer, make_store: Make, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A user who may write but not create indexes (nx-27017 has no users: pymongo's refusal
    stands in): results store, and expire on read."""
    from pymongo.collection import Collection

    def refuse(*args: object, **kwargs: object) -> str:
        raise errors.OperationFailure("not authorized to create index", code=13)

    monkeypatch.setattr(Collection, "create_index", refuse)
    store = make_store(nx.url(f"t_{uuid.uuid4().hex[:8]}"))
    # The URL as a user with a password writes it, put in once the client is made (nx-27017
    # cannot log in): what the store names in its messages.
    store._db.client()
    store.url = store._db.url = store.url.replace("mongodb://", f"mongodb://kernel:{SECRET}@")
    with caplog.at_level("WARNING", logger="kernel.mongodb"):
        store.set([("k", b"v")], 30)
    assert store.get("k") == b"v"
    [line] = [r.getMessage() for r in caplog.records if r.name == "kernel.mongodb"]
    assert "does not let the user create the indexes" in line and "kernel results cleanup" in line
    assert "kernel:**@" in line and SECRET not in line


@pytest.mark.unit
def test_client_options_pymongo_does_not_know(make_store: Make) -> None:
    store = make_store("mongodb://127.0.0.1:1/db",
                       mongodb_backend_settings={"options": {"maxPoolSise": 3}})
    with pytest.raises(ConfigurationError, match="options are not valid.*maxPoolSise") as caught:
        store.get("k")
    _one_sentence(str(caught.value))
