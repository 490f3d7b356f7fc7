"""The DynamoDB result store (boto3), in Celery's DynamoDB backend's table layout: one item per
key, ``{"id": S "b'<Celery's key>'", "result": B <the encoded record>, "timestamp": N <Unix
time>}`` (the id is the text of the key's bytes, see `item_id`) and, for a record that
expires, ``"ttl": N <Unix time, whole seconds>``, the attribute the table's time to live
deletes by (turned on at first use). Counters keep their value in Celery's ``chord_count``.

DynamoDB deletes expired items lazily (within days), so reads treat an item whose ``ttl`` is
past as absent, and `add` and `incr` as nothing stored. An emulator without a time-to-live API
(dynalite) keeps expired items until `cleanup` deletes them (``kernel results cleanup``).

Every read is strongly consistent (a result is visible to every reader once stored); `add` is
a put conditional on no live item; `incr` is one ``UpdateItem ADD`` conditional on the item
not having expired; `set` and `delete` of many keys go in ``BatchWriteItem`` requests of 25,
what DynamoDB leaves unprocessed sent again with a backoff.

A record over DynamoDB's item limit (400 KB) is kept in parts: the item holds the first, and
``parts``/``gen`` name the items (``<key>\\x1f<gen>\\x1f<n>``) that hold the rest. Celery's
backend can neither write nor read such records.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import botocore.exceptions

from kernel.interfaces.results import ResultStore
from kernel.plugin import (
    GROUP_KEY_PREFIX,
    ConfigurationError,
    GroupFields,
    KernelError,
    OptionReader,
    Options,
    RecordFields,
    task_key,
)
from kernel_dynamodb.connection import ConditionFailed, Table, Target, describe, error_code, \
    parse_target
from kernel_dynamodb.plugin import RESULT_STORE_CAPABILITIES

log = logging.getLogger("kernel.results.dynamodb")

#: Celery's attribute names.
ID, RESULT, TIMESTAMP, TTL, COUNT = "id", "result", "timestamp", "ttl", "chord_count"
#: kernel's own attributes: a record kept in parts; a chord's size and its counted members.
PARTS, GEN, SIZE, COUNTED = "parts", "gen", "chord_size", "chord_parts"

#: Celery's prefix of a chord's counter item: ``chord-unlock-<group id>``.
CHORD_PREFIX = "chord-unlock-"

#: the bytes of one item's ``result`` (DynamoDB's item limit is 400 KB, names included).
PART_SIZE = 380_000
#: what BatchWriteItem and BatchGetItem take in one request.
WRITE_BATCH, READ_BATCH = 25, 100


def item_id(key: str) -> str:
    """The ``id`` of the item that holds `key`, as Celery's backend writes it: the text
    Python gives the key's UTF-8 bytes (``b'celery-task-meta-<id>'``; Celery keeps keys as
    bytes and its backend converts them with ``str``): one key, one id."""
    return str(key.encode())


def ref(key: str) -> dict[str, Any]:
    """The DynamoDB ``Key`` of `key`'s item."""
    return {ID: {"S": item_id(key)}}


def part_key(key: str, gen: str, n: int) -> str:
    """The item of part `n` of the value `gen` (a fresh id per write) stored under `key`: a
    write never touches the parts of the value it replaces, which a reader may be reading."""
    return f"{key}\x1f{gen}\x1f{n}"


class DynamoDBStore(ResultStore):
    """``dynamodb://[key:secret@]region[:port][/table][?read=N&write=M&ttl_seconds=S]``
    (see `kernel_dynamodb.connection` for how the URL is read).

    Options (``result_backend_options``): ``timeout`` (seconds one request waits, at most a
    quarter of ``connection_timeout``), ``max_connections`` (per process, 10 as boto3's).
    Settings: ``dynamodb_endpoint_url``, ``dynamodb_create_table`` (True). The URL's
    ``ttl_seconds`` (Celery's) replaces every record's expiry; a negative one turns the
    table's time to live off, and records are kept until deleted.
    ``connection_timeout`` (4 s, the app's ``broker_connection_timeout``) is the most a call
    spends on throttling or an unreachable endpoint before `ConnectionFailed`.
    """

    capabilities = RESULT_STORE_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        self.url = url
        options = options or {}
        reader = OptionReader(options, "DynamoDB result store")
        endpoint = options.get("dynamodb_endpoint_url")
        if endpoint is not None and not isinstance(endpoint, str):
            raise ConfigurationError("dynamodb_endpoint_url must be a URL such as "
                                     "http://127.0.0.1:8000")
        self.target: Target = parse_target(url, endpoint)
        self.create_table = reader.boolean("dynamodb_create_table", True)
        connection_timeout = reader.number("connection_timeout", 4.0, positive=True)
        attempt = connection_timeout / 4
        fields = options.get("record_fields")
        self._fields = fields if isinstance(fields, RecordFields) else None
        #: whether DynamoDB deletes expired items itself (the table's time to live is on).
        self.expires_itself = False
        self.table = Table(
            self.target, connection_timeout=connection_timeout,
            timeout=min(reader.number("timeout", attempt, positive=True), attempt),
            max_connections=reader.integer("max_connections", 10, minimum=1),
            prepare=self._prepare)

    def __repr__(self) -> str:
        # No URL: its user is the access key id.
        return f"<DynamoDBStore table={self.target.table!r} at {self.target.where()}>"

    # ------------------------------------------------------------------ the table

    def _prepare(self, table: Table) -> None:
        """The table found, or created as Celery creates it; its time to live turned on for
        ``ttl`` (off with a negative ``ttl_seconds``)."""
        name = self.target.table
        try:
            found = table.send("describe_table", TableName=name)["Table"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise table.refused(exc, "DescribeTable") from None
            found = self._create(table)
        if found.get("TableStatus") != "ACTIVE":
            try:
                table.wait_active("it was created")
            except botocore.exceptions.ClientError as exc:
                raise table.refused(exc, "DescribeTable") from None
        self._time_to_live(table)

    def _create(self, table: Table) -> Any:
        name, where = self.target.table, self.target.where()
        if not self.create_table:
            raise ConfigurationError(
                f"the DynamoDB table {name!r} does not exist at {where} and "
                f"dynamodb_create_table is off; create it (hash key 'id', a string) or turn "
                f"the setting on")
        try:
            created = table.send(
                "create_table", TableName=name,
                AttributeDefinitions=[{"AttributeName": ID, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": ID, "KeyType": "HASH"}],
                ProvisionedThroughput={"ReadCapacityUnits": self.target.read,
                                       "WriteCapacityUnits": self.target.write})
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ResourceInUseException":  # another process creates it
                return {"TableStatus": "CREATING"}
            raise ConfigurationError(
                f"the DynamoDB table {name!r} does not exist at {where} and creating it was "
                f"refused ({describe(exc)}); create it (hash key 'id', a string) or allow "
                f"dynamodb:CreateTable") from None
        log.info("created the DynamoDB table %r at %s (%d read, %d write capacity units)",
                 name, where, self.target.read, self.target.write)
        return created["TableDescription"]

    def _time_to_live(self, table: Table) -> None:
        wanted = self.target.ttl_seconds is None or self.target.ttl_seconds >= 0
        name, where = self.target.table, self.target.where()
        try:
            found = table.send("describe_time_to_live", TableName=name)["TimeToLiveDescription"]
            status, attribute = found.get("TimeToLiveStatus"), found.get("AttributeName")
            on = status in ("ENABLED", "ENABLING")
            if on and attribute != TTL:
                log.warning("the DynamoDB table %r expires items by %r, not %r: expired "
                            "records are ignored on read but stay until deleted", name,
                            attribute, TTL)
            elif on != wanted and status not in ("ENABLING", "DISABLING"):
                table.send("update_time_to_live", TableName=name,
                           TimeToLiveSpecification={"Enabled": wanted, "AttributeName": TTL})
                on = wanted
            self.expires_itself = on and attribute in (TTL, None)
        except botocore.exceptions.ClientError as exc:
            # dynalite has no time-to-live API (UnknownOperationException); a policy may deny
            # it. Reads ignore expired items all the same; cleanup deletes them.
            log.warning("DynamoDB at %s would not turn on the time to live of the table %r "
                        "(%s): expired records are ignored on read and deleted only by "
                        "`kernel results cleanup`", where, name, describe(exc))
            self.expires_itself = False

    # ------------------------------------------------------------------ items

    def _deadline(self, expires: float | None) -> int | None:
        """The ``ttl`` of a record stored now: never before `expires` has passed."""
        ttl = self.target.ttl_seconds
        if ttl is not None:
            return None if ttl < 0 else math.ceil(time.time() + ttl)
        return None if expires is None else math.ceil(time.time() + expires)

    def _items(self, key: str, value: bytes, at: int | None) -> list[dict[str, Any]]:
        """The items that keep `value` under `key`: one, or the parts and then the first,
        which is to be written last (a reader that finds it finds its parts)."""
        now = {"N": repr(time.time())}
        extra = {} if at is None else {TTL: {"N": str(at)}}
        if len(value) <= PART_SIZE:
            return [{**ref(key), RESULT: {"B": value}, TIMESTAMP: now, **extra}]
        gen = uuid.uuid4().hex
        chunks = [value[i:i + PART_SIZE] for i in range(0, len(value), PART_SIZE)]
        rest = [{**ref(part_key(key, gen, n)), RESULT: {"B": chunk}, TIMESTAMP: now,
                 **extra} for n, chunk in enumerate(chunks[1:], 1)]
        return [*rest, {**ref(key), RESULT: {"B": chunks[0]}, TIMESTAMP: now,
                        GEN: {"S": gen}, PARTS: {"N": str(len(chunks) - 1)}, **extra}]

    @staticmethod
    def _live(item: Mapping[str, Any] | None, now: float) -> bool:
        if not item:
            return False
        ttl = item.get(TTL, {}).get("N")
        return ttl is None or float(ttl) > now

    def _value(self, key: str, item: Mapping[str, Any]) -> bytes:
        """The bytes `key`'s item holds (a counter as its decimal text)."""
        if RESULT in item:
            value = item[RESULT].get("B")
            if not isinstance(value, bytes):
                raise KernelError(
                    f"the DynamoDB item {key!r} in the table {self.target.table!r} holds a "
                    f"'result' that is not binary ({sorted(item[RESULT])}); it was not written "
                    f"by Celery or kernel: delete it")
            if PARTS in item:
                return value + self._rest(key, item)
            return value
        if COUNT in item:
            return str(item[COUNT]["N"]).encode()
        raise KernelError(f"the DynamoDB item {key!r} in the table {self.target.table!r} has "
                          f"neither 'result' nor 'chord_count'; it was not written by Celery "
                          f"or kernel: delete it")

    @staticmethod
    def _part_keys(key: str, item: Mapping[str, Any]) -> list[str]:
        gen = str(item.get(GEN, {}).get("S"))
        return [part_key(key, gen, n) for n in range(1, int(item[PARTS]["N"]) + 1)]

    def _rest(self, key: str, item: Mapping[str, Any]) -> bytes:
        keys = self._part_keys(key, item)
        found = self._read_many(keys)
        if len(found) != len(keys):
            raise _Replaced(key)  # deleted meanwhile
        return b"".join([bytes(found[k][RESULT]["B"]) for k in keys])

    def _read(self, key: str) -> dict[str, Any] | None:
        found = self.table.call("get_item", TableName=self.target.table,
                                Key=ref(key), ConsistentRead=True)
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _read_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The items of `keys` that exist, by key (``BatchGetItem``, 100 a request)."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        by_id = {item_id(k): k for k in unique}
        for start in range(0, len(unique), READ_BATCH):
            request: dict[str, Any] = {self.target.table: {
                "Keys": [ref(k) for k in unique[start:start + READ_BATCH]],
                "ConsistentRead": True}}
            for answer in self._batches("batch_get_item", request, "UnprocessedKeys"):
                for item in answer.get("Responses", {}).get(self.target.table, []):
                    found[by_id[item[ID]["S"]]] = item
        return found

    def _write_many(self, requests: Sequence[dict[str, Any]]) -> None:
        """Puts and deletes (``BatchWriteItem``, 25 a request); one request per key."""
        for start in range(0, len(requests), WRITE_BATCH):
            request = {self.target.table: list(requests[start:start + WRITE_BATCH])}
            for _ in self._batches("batch_write_item", request, "UnprocessedItems"):
                pass

    def _batches(self, operation: str, request: dict[str, Any],
                 unprocessed: str) -> Iterator[dict[str, Any]]:
        """Send a batch request, then what DynamoDB left unprocessed (it does so under
        throttling), with a backoff, until nothing is left or ``connection_timeout`` passed."""
        deadline = time.monotonic() + self.table.connection_timeout
        pause = 0.05
        while request:
            answer = self.table.call(operation, RequestItems=request)
            yield answer
            request = answer.get(unprocessed) or {}
            if request:
                if time.monotonic() > deadline:
                    raise KernelError(
                        f"DynamoDB at {self.target.where()} left part of a batch for the "
                        f"table {self.target.table!r} unprocessed for "
                        f"{self.table.connection_timeout:g} s; raise the table's capacity, or "
                        f"allow longer (broker_connection_timeout)")
                time.sleep(pause)
                pause = min(pause * 2, 0.5)

    # ------------------------------------------------------------------ the contract

    def set(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        at = self._deadline(expires)
        latest = dict(items)  # one request per key in a batch: the last value wins
        made = [self._items(key, value, at) for key, value in latest.items()]
        parts = [{"PutRequest": {"Item": item}} for items_of in made for item in items_of[:-1]]
        if parts:  # before the items that name them
            self._write_many(parts)
        self._write_many([{"PutRequest": {"Item": items_of[-1]}} for items_of in made])

    def add(self, items: Sequence[tuple[str, bytes]], expires: float | None) -> None:
        at = self._deadline(expires)
        for key, value in items:
            *rest, first = self._items(key, value, at)
            if rest:
                self._write_many([{"PutRequest": {"Item": item}} for item in rest])
            try:
                self.table.call(
                    "put_item", TableName=self.target.table, Item=first,
                    ConditionExpression="attribute_not_exists(#id) OR #ttl <= :now",
                    ExpressionAttributeNames={"#id": ID, "#ttl": TTL},
                    ExpressionAttributeValues={":now": {"N": repr(time.time())}})
            except ConditionFailed:  # a live value is there: it stays, without these parts
                if rest:
                    self._write_many([{"DeleteRequest": {"Key": {ID: item[ID]}}}
                                      for item in rest])

    def get(self, key: str) -> bytes | None:
        for _ in range(5):
            item = self._read(key)
            if not self._live(item, time.time()):
                return None
            assert item is not None
            try:
                return self._value(key, item)
            except _Replaced:
                continue  # replaced between reading the item and its parts: read it again
        raise KernelError(f"the DynamoDB item {key!r} in the table {self.target.table!r} "
                          f"kept changing while it was read; try again")

    def delete(self, keys: Sequence[str]) -> None:
        """One ``DeleteItem`` per key, which returns the item: a record kept in parts has
        them deleted too."""
        for key in dict.fromkeys(keys):
            old = self.table.call("delete_item", TableName=self.target.table,
                                  Key=ref(key), ReturnValues="ALL_OLD")
            item = old.get("Attributes") or {}
            if PARTS in item:
                self._write_many([{"DeleteRequest": {"Key": ref(k)}}
                                  for k in self._part_keys(key, item)])

    def incr(self, key: str, amount: int = 1, expires: float | None = None) -> int:
        """``ADD chord_count`` on a live item (an expired one is replaced by `amount`), in
        one request each: sent again only if it certainly was not applied."""
        at = self._deadline(expires)
        while True:
            now = time.time()
            names = {"#c": COUNT, "#ts": TIMESTAMP, "#ttl": TTL}
            values: dict[str, Any] = {":n": {"N": str(amount)}, ":now": {"N": repr(now)}}
            update = "ADD #c :n SET #ts = :now"
            if at is not None:
                update += ", #ttl = :at"
                values[":at"] = {"N": str(at)}
            try:
                answer = self.table.call(
                    "update_item", resend=False, TableName=self.target.table,
                    Key=ref(key), UpdateExpression=update,
                    ConditionExpression="attribute_not_exists(#ttl) OR #ttl > :now",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                    ReturnValues="UPDATED_NEW")
                return int(answer["Attributes"][COUNT]["N"])
            except ConditionFailed:
                pass  # expired: start again from 0, unless another call did so first
            item = {**ref(key), COUNT: {"N": str(amount)}, TIMESTAMP: {"N": repr(now)}}
            if at is not None:
                item[TTL] = {"N": str(at)}
            try:
                self.table.call("put_item", resend=False, TableName=self.target.table,
                                Item=item, ConditionExpression="#ttl <= :now",
                                ExpressionAttributeNames={"#ttl": TTL},
                                ExpressionAttributeValues={":now": {"N": repr(now)}})
                return amount
            except ConditionFailed:
                continue

    # ------------------------------------------------------------------ chords

    def chord_start(self, key: str, members: Sequence[str], expires: float | None) -> None:
        """Celery's layout: the header saved as a group (``celery-taskset-meta-<gid>``), which
        a Celery worker restores to join the header, and the counter item
        ``chord-unlock-<gid>`` at 0, which Celery's workers count up; kernel adds the size."""
        gid = key[len(GROUP_KEY_PREFIX):]
        at = self._deadline(expires)
        if self._fields is not None:
            group = [[gid, None], [[[member, None], None] for member in members]]
            self.set([(key, self._fields.group_record(GroupFields(gid, group)))], expires)
        item = {**ref(CHORD_PREFIX + gid), COUNT: {"N": "0"},
                SIZE: {"N": str(len(members))}, TIMESTAMP: {"N": repr(time.time())}}
        if at is not None:
            item[TTL] = {"N": str(at)}
        self.table.call("put_item", TableName=self.target.table, Item=item)

    def chord_part(self, key: str, index: int | None, task_id: str, entry: bytes,
                   expires: float | None) -> list[bytes] | None:
        """The member's entry stored first (``<key>.d.<task>.<index>``), then one
        ``UpdateItem`` on ``chord-unlock-<gid>``: ADD 1 to ``chord_count`` and the entry's key
        to ``chord_parts``, unless that key is there (a redelivered member). The call whose
        count reaches the size reads every entry; members a Celery worker ran have none, and
        are read from their results."""
        gid = key[len(GROUP_KEY_PREFIX):]
        counter = CHORD_PREFIX + gid
        marker = f"{key}.d.{task_id}.{index}"
        position = b"" if index is None else str(index).encode()
        self.set([(marker, b"%s\n%s\n%s" % (position, task_id.encode(), entry))], expires)
        try:
            answer = self.table.call(
                "update_item", resend=False, TableName=self.target.table,
                Key=ref(counter), UpdateExpression="ADD #c :one, #p :me",
                ConditionExpression="attribute_exists(#id) AND NOT contains(#p, :key)",
                ExpressionAttributeNames={"#c": COUNT, "#p": COUNTED, "#id": ID},
                ExpressionAttributeValues={":one": {"N": "1"}, ":me": {"SS": [marker]},
                                           ":key": {"S": marker}},
                ReturnValues="ALL_NEW")
        except ConditionFailed:
            if self._read(counter) is None:  # no such chord (finished, never started)
                self.delete([marker])
            return None
        state = answer["Attributes"]
        done = int(state[COUNT]["N"])
        size = self._size(gid, key, state)
        extra = self.get(key + ".t")
        if done != size + int(extra or 0):
            return None
        counted = sorted(state.get(COUNTED, {}).get("SS", []))
        parts = [bytes(v).split(b"\n", 2) for v in
                 (self._value(k, i) for k, i in self._read_many(counted).items())]
        if len(parts) < done:  # members a Celery worker counted, without an entry
            parts += self._celery_members(gid, {p[1].decode() for p in parts}, key)
        parts.sort(key=lambda p: (not p[0], int(p[0] or 0)))
        self._write_many([{"DeleteRequest": {"Key": ref(k)}}
                          for k in [counter, key + ".t", *counted]])
        return [p[2] for p in parts]

    def _size(self, gid: str, key: str, state: Mapping[str, Any]) -> int:
        """The chord's size: kernel's ``chord_size``, else (a Celery client started it) the
        members of the header it saved."""
        if SIZE in state:
            return int(state[SIZE]["N"])
        return len(self._members(gid, key))

    def _members(self, gid: str, key: str) -> list[str]:
        fields = self._need_fields(f"the saved header of the chord {gid}")
        data = self.get(key)
        if data is None:
            raise KernelError(f"the chord {gid} has no saved header ({key!r}) in the DynamoDB "
                              f"table {self.target.table!r}; it expired or was deleted")
        members = fields.group(gid, data).result[1]
        return [str(m[0][0]) for m in members]

    def _celery_members(self, gid: str, counted: Collection[str],
                        key: str) -> list[list[bytes]]:
        """Entries for the members a Celery worker ran (counted, with no entry of kernel's),
        made from their results."""
        members = self._members(gid, key)
        missing = [(n, tid) for n, tid in enumerate(members) if tid not in counted]
        if not missing:
            return []
        fields = self._need_fields(f"the results of the chord {gid}'s members")
        found = self._read_many([task_key(tid) for _, tid in missing])
        parts = []
        for n, tid in missing:
            item = found.get(task_key(tid))
            if item is None:
                log.warning("chord %s: member %s has no result; its value in the body is None",
                            gid, tid)
                entry = fields.dumps([1, tid, "SUCCESS", None])
            else:
                task = fields.task(self._value(task_key(tid), item))
                entry = fields.dumps([1, tid, task.status, task.result])
            parts.append([str(n).encode(), tid.encode(), entry])
        return parts

    def _need_fields(self, what: str) -> RecordFields:
        if self._fields is None:
            raise KernelError(f"the DynamoDB store needs the app's result serializer to read "
                              f"{what}; create it through an App (options['record_fields'])")
        return self._fields

    # ------------------------------------------------------------------ upkeep

    def cleanup(self) -> dict[str, int]:
        """Where the table's time to live is off (dynalite, a policy that denies it, a
        negative ``ttl_seconds`` aside), delete the items whose ``ttl`` is past: a scan of
        the table. Where it is on, DynamoDB deletes them itself: nothing to do."""
        self.table.ready()
        if self.expires_itself:
            return {}
        removed = 0
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.target.table, "ProjectionExpression": "#id",
                "FilterExpression": "#ttl <= :now",
                "ExpressionAttributeNames": {"#id": ID, "#ttl": TTL},
                "ExpressionAttributeValues": {":now": {"N": repr(time.time())}}}
            if start:
                request["ExclusiveStartKey"] = start
            page = self.table.call("scan", **request)
            gone = [item[ID]["S"] for item in page.get("Items", [])]
            self._write_many([{"DeleteRequest": {"Key": {ID: {"S": k}}}} for k in gone])
            removed += len(gone)
            start = page.get("LastEvaluatedKey")
            if not start:
                return {"records": removed}

    def close(self) -> None:
        self.table.close()


class _Replaced(Exception):
    """A record kept in parts was replaced while it was read."""


__all__ = ["DynamoDBStore", "item_id", "part_key"]
