"""The SQS transport, in the message layout of kombu's SQS transport so Celery producers and
consumers interoperate.

Layout:

* A queue is the SQS queue `kernel_sqs.names.entity_name` names (kombu's mapping, with Celery's
  ``queue_name_prefix``). Its URL is found, or the queue created with Celery's attributes
  (``visibility_timeout``; FIFO for a ``.fifo`` name), unless ``predefined_queues`` is set:
  then only the queues named there are used, and no queue is created.
* A message's body is kombu's: the JSON envelope (`Envelope.to_json`), base64-encoded (kombu's
  default ``sqs_base64_encoding``); bodies in plain JSON are read too. What kernel adds travels
  in message attributes named ``kernel.*``, which Celery ignores: ``kernel.deliveries`` (how
  many deliveries came before this SQS message existed), ``kernel.not-before`` (unix time, for
  an ETA past SQS's 15 minutes) and ``kernel.reason`` (a dead letter's).
* Delivery count: ``kernel.deliveries`` + SQS's ``ApproximateReceiveCount``. A requeue
  (`reject` with requeue) makes the message visible again, so the next receive counts one more;
  a `release` of a standard queue's message sends a copy whose ``kernel.deliveries`` takes the
  count back, and deletes the original (on a FIFO queue, where a copy would lose its place in
  its group, a release only makes the message visible again, and counts).
* Leases are visibility timeouts: each receive hides the messages for ``lease_seconds`` (the
  worker's ``worker_lease_seconds``), `extend_lease` is ChangeMessageVisibilityBatch. A killed
  worker's messages come back when their visibility lapses. SQS caps a message's visibility at
  12 hours from its first receive: a task running longer is delivered again.
* Delays: ``DelaySeconds`` (whole seconds, rounded up, so never early) for up to 15 minutes; a
  later ETA is sent with 15 minutes' delay and ``kernel.not-before``, and each receive before
  that time sends it on again (a hop: a copy with the rest of the delay, the original deleted,
  the receive not counted), never holding it in a worker. FIFO queues take no per-message
  delay: a delayed message for one is refused with a sentence.
* FIFO queues: ``MessageGroupId`` is the envelope property or header ``MessageGroupId`` (what a
  Celery client sends with ``apply_async(MessageGroupId=...)``), else the task's name, so tasks
  of one name run in order; ``MessageDeduplicationId`` is the property of that name, else
  ``<task id>-<retries>``, so a publish sent again is dropped by SQS and a retry of the task is
  not.
* Dead letters go to kernel's ``<queue>.dead`` (SQS name ``<name>-dead``), the reason in the
  envelope's ``properties.dead_letter_reason`` and in ``kernel.reason``; a queue with a redrive
  policy of the user's sends them to that policy's queue instead, where SQS also moves messages
  received ``maxReceiveCount`` times. A body that does not decode goes there as it is.
* Settling from anywhere: a delivery's tag, a `Receipt`, carries the receipt handle and what a
  copy needs, so any process can ack, requeue or release it. A release or reject acts only
  while the delivery's lease is known to run (what this transport saw, else the lease the
  receive took), so a delivery whose message went to another consumer is left alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kernel.plugin import (
    DEAD_LETTER_SUFFIX,
    ConfigurationError,
    DecodeError,
    Envelope,
    KernelError,
    OptionReader,
    Options,
    mask_url,
)
from kernel.interfaces.transport import Delivery, Outgoing, Transport
from kernel_sqs.connection import Connection, read_settings, shown_url
from kernel_sqs.names import FIFO_SUFFIX, is_fifo
from kernel_sqs.plugin import TRANSPORT_CAPABILITIES

#: SQS's limits: messages per batch call, seconds of per-message delay, bytes per batch.
BATCH = 10
MAX_DELAY = 900
MAX_BATCH_BYTES = 256 * 1024
DELIVERIES = "kernel.deliveries"
NOT_BEFORE = "kernel.not-before"
REASON_ATTRIBUTE = "kernel.reason"
REASON = "dead_letter_reason"
SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"]
#: a lease counts as ended this long before the receive said, so a release never acts on a
#: message that may already be another consumer's.
MARGIN = 0.25
#: settled receipts remembered (so a second release of one does nothing), at most.
MAX_SETTLED = 100_000
_DEDUP = re.compile(r"[^A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]")


@dataclass(frozen=True)
class Receipt:
    """A delivery's tag: equal and hashed by the receipt handle alone."""

    handle: str
    body: str = field(compare=False, repr=False)
    before: int = field(compare=False, default=0)
    received: int = field(compare=False, default=1)
    not_before: float | None = field(compare=False, default=None)
    #: wall-clock time until which the receive leased the message (less `MARGIN`).
    leased_until: float = field(compare=False, default=0.0)

    def __str__(self) -> str:
        return self.handle[:16]


class SQSTransport(Transport):
    """``sqs://`` or ``sqs://KEY:SECRET@`` (see `kernel_sqs.connection` and the module doc).

    Options (Celery's names): ``region``, ``queue_name_prefix``, ``predefined_queues``,
    ``visibility_timeout`` (of created queues, 1800), ``wait_time_seconds`` (the longest long
    poll, 10; 0 polls every ``polling_interval`` seconds, 1), ``sts_role_arn`` (with
    ``sts_token_timeout``), ``endpoint_url``, ``is_secure``, ``sqs-creation-attributes``; and
    kernel's ``lease_seconds``, ``connection_timeout`` and ``max_delay_seconds`` (the longest
    DelaySeconds a send uses, 900; lower it to see hops in a test).

    A publish that raised was not delivered, except when SQS took it and its reply was lost
    (the connection dropped after the request went out): the publish is then not sent again
    (SQS keeps no token for a standard queue), and the `ConnectionFailed` says it may have been
    delivered. On a FIFO queue SQS drops a copy sent within 5 minutes.
    """

    capabilities = TRANSPORT_CAPABILITIES

    def __init__(self, url: str, options: Options | None = None) -> None:
        options = dict(options or {})
        self.url = url
        reader = OptionReader(options, "SQS transport")
        self.lease_seconds = reader.number("lease_seconds", 30.0, positive=True)
        self.max_delay = reader.integer("max_delay_seconds", MAX_DELAY, minimum=1)
        if self.max_delay > MAX_DELAY:
            raise ConfigurationError(f"SQS transport option 'max_delay_seconds' must be 1 to "
                                     f"{MAX_DELAY} (SQS's longest delay), got {self.max_delay}")
        self.settings = read_settings(url, options)
        self.connection = Connection(self.settings,
                                     timeout=min(10.0, self.settings.connection_timeout))
        self._lock = threading.Lock()
        self._leases: dict[str, float] = {}  # handle -> lease end; 0.0: settled
        self._closed = threading.Event()

    def __repr__(self) -> str:
        return f"<SQSTransport {shown_url(mask_url(self.url))}>"

    # ------------------------------------------------------------------ publish

    def publish(self, messages: Sequence[Outgoing]) -> None:
        by_queue: dict[str, list[dict[str, Any]]] = {}
        for m in messages:
            by_queue.setdefault(m.queue, []).append(self._entry(m))
        for queue, entries in by_queue.items():
            self._send(queue, entries)

    def _entry(self, m: Outgoing) -> dict[str, Any]:
        envelope = m.envelope
        if m.priority:
            envelope = replace(envelope, properties={"priority": m.priority,
                                                     **envelope.properties})
        entry: dict[str, Any] = {"MessageBody": _encode(envelope.to_json(m.queue))}
        attributes: dict[str, Any] = {}
        delay = 0.0 if m.not_before is None else m.not_before - time.time()
        if delay > 0:
            if is_fifo(m.queue):
                raise ConfigurationError(
                    f"the SQS FIFO queue {m.queue!r} takes no per-message delay, so the task "
                    f"{envelope.headers.get('id')!r} cannot wait for its ETA there; send "
                    f"delayed tasks (countdown, eta, retries with a delay) to a standard queue")
            entry["DelaySeconds"] = min(self.max_delay, math.ceil(delay))
            if delay > self.max_delay and m.not_before is not None:
                attributes[NOT_BEFORE] = _number(repr(float(m.not_before)))
        if is_fifo(m.queue):
            entry.update(_fifo_fields(envelope))
        if attributes:
            entry["MessageAttributes"] = attributes
        return entry

    def _send(self, queue: str, entries: list[dict[str, Any]], *, what: str = "a publish"
              ) -> None:
        """Send `entries` to `queue` in batches of SQS's size, in order; entries SQS failed on
        its side are sent again, ones it refused raise. One entry is a SendMessage, which SQS
        answers sooner than a batch of one."""
        if len(entries) == 1:
            self.connection.call(queue, "send_message", resend_lost=False, **entries[0])
            return
        for batch in _batches(entries):
            pending = {str(i): entry for i, entry in enumerate(batch)}
            for _ in range(5):
                reply = self.connection.call(
                    queue, "send_message_batch", resend_lost=False,
                    Entries=[{"Id": i, **entry} for i, entry in pending.items()])
                failed = reply.get("Failed") or []
                refused = [f for f in failed if f.get("SenderFault")]
                if refused:
                    raise KernelError(f"SQS refused {what} to the queue {queue!r} "
                                      f"({refused[0].get('Code')}: {refused[0].get('Message')})"
                                      f"; check the message's size (256 KiB at most) and the "
                                      f"queue's settings")
                pending = {f["Id"]: pending[f["Id"]] for f in failed}
                if not pending:
                    break
                time.sleep(0.1)
            else:
                raise KernelError(f"SQS failed {what} to the queue {queue!r} five times on "
                                  f"its side; check the queue in the AWS console")

    # ------------------------------------------------------------------ consume

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Delivery]:
        if limit <= 0 or not queues:
            return []
        deadline = time.monotonic() + max(0.0, timeout)
        s = self.settings
        while True:
            left = deadline - time.monotonic()
            if len(queues) == 1:
                # One queue: a long poll returns at once when messages wait.
                wait = min(s.wait_time_seconds, max(0, math.ceil(left)))
                got = self._take(queues[0], limit, wait)
            else:
                got = []
                for queue in queues:  # preference: each queue at once, in order
                    got += self._take(queue, limit - len(got), 0)
                    if len(got) >= limit:
                        break
                if not got and s.wait_time_seconds and left > 0:
                    # SQS waits on one queue a call: each in turn, a second each.
                    for queue in queues:
                        got = self._take(queue, limit, 1)
                        if got or time.monotonic() >= deadline:
                            break
            if got or self._closed.is_set():
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            if not s.wait_time_seconds:
                self._closed.wait(min(s.polling_interval, left))

    def _take(self, queue: str, limit: int, wait: int) -> list[Delivery]:
        """Receive up to `limit` messages of `queue` (10 a call; the first call waits up to
        `wait` seconds), leased for ``lease_seconds``."""
        out: list[Delivery] = []
        while len(out) < limit:
            want = min(BATCH, limit - len(out))
            reply = self.connection.call(
                queue, "receive_message", MaxNumberOfMessages=want,
                WaitTimeSeconds=wait if not out else 0,
                VisibilityTimeout=math.ceil(self.lease_seconds),
                MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
                MessageAttributeNames=["kernel.*"],
                timeout=self.settings.connection_timeout + wait)
            leased_until = time.time() + self.lease_seconds - min(MARGIN, self.lease_seconds / 4)
            messages = reply.get("Messages") or []
            out += self._deliveries(queue, messages, leased_until)
            if len(messages) < want:
                break
        return out

    def _deliveries(self, queue: str, messages: list[dict[str, Any]],
                    leased_until: float) -> list[Delivery]:
        out = []
        now = time.time()
        for message in messages:
            attributes = message.get("MessageAttributes") or {}
            system = message.get("Attributes") or {}
            not_before = _float(attributes.get(NOT_BEFORE))
            receipt = Receipt(
                handle=message["ReceiptHandle"], body=message["Body"],
                before=int(_float(attributes.get(DELIVERIES)) or 0),
                received=int(system.get("ApproximateReceiveCount", 1)),
                not_before=not_before, leased_until=leased_until)
            with self._lock:
                self._leases[receipt.handle] = leased_until
            count = receipt.before + receipt.received
            if not_before is not None and not_before > now:
                self._hop(queue, receipt, not_before - now)
                continue
            try:
                envelope = Envelope.from_json(_decode(message["Body"]))
            except DecodeError as exc:
                # Never runnable: to the dead-letter queue as it came, the worker serves on.
                self._bury(queue, receipt, message["Body"], str(exc), count)
                continue
            out.append(Delivery(receipt, queue, envelope, count))
        return out

    def _hop(self, queue: str, receipt: Receipt, left: float) -> None:
        """Send a message not yet due on with the rest of its delay (15 minutes at most);
        this receive does not count."""
        entry: dict[str, Any] = {"MessageBody": receipt.body,
                                 "DelaySeconds": min(self.max_delay, math.ceil(left)),
                                 "MessageAttributes": _attributes(receipt.before +
                                                                  receipt.received - 1,
                                                                  receipt.not_before)}
        self._send(queue, [entry], what="a delayed message's next hop")
        self._delete(queue, [receipt])

    def _bury(self, queue: str, receipt: Receipt, body: str, reason: str, count: int) -> None:
        attributes = _attributes(count, None)
        attributes[REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason[:1000]}
        dead = queue + DEAD_LETTER_SUFFIX
        entry: dict[str, Any] = {"MessageBody": body, "MessageAttributes": attributes}
        if self.connection.url(dead).endswith(FIFO_SUFFIX):
            # A FIFO redrive target of the user's: one group, and the receipt as the
            # deduplication id, so burying one delivery twice keeps one copy.
            entry["MessageGroupId"] = "dead-letters"
            entry["MessageDeduplicationId"] = hashlib.sha256(
                receipt.handle.encode()).hexdigest()
        self._send(dead, [entry], what="a dead letter")
        self._delete(queue, [receipt])

    # ------------------------------------------------------------------ settle

    def _live(self, receipt: Receipt) -> bool:
        with self._lock:
            until = self._leases.get(receipt.handle, receipt.leased_until)
        return time.time() < until

    def _settled(self, receipts: Iterable[Receipt]) -> None:
        with self._lock:
            if len(self._leases) > MAX_SETTLED:
                now = time.time()
                self._leases = {h: t for h, t in self._leases.items() if t > now}
            for receipt in receipts:
                self._leases[receipt.handle] = 0.0

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        by_queue: dict[str, list[Receipt]] = {}
        for d in deliveries:
            if isinstance(d.tag, Receipt):
                by_queue.setdefault(d.queue, []).append(d.tag)
        for queue, receipts in by_queue.items():
            self._delete(queue, receipts)

    def _delete(self, queue: str, receipts: list[Receipt]) -> None:
        """DeleteMessageBatch; a handle SQS no longer knows (the message gone) is no error."""
        for start in range(0, len(receipts), BATCH):
            chunk = receipts[start:start + BATCH]
            self.connection.call(queue, "delete_message_batch", Entries=[
                {"Id": str(i), "ReceiptHandle": r.handle} for i, r in enumerate(chunk)])
        self._settled(receipts)

    def _show(self, queue: str, receipts: list[Receipt], seconds: float) -> list[Receipt]:
        """ChangeMessageVisibilityBatch to `seconds`; the receipts SQS took."""
        took: list[Receipt] = []
        for start in range(0, len(receipts), BATCH):
            chunk = receipts[start:start + BATCH]
            reply = self.connection.call(queue, "change_message_visibility_batch", Entries=[
                {"Id": str(i), "ReceiptHandle": r.handle,
                 "VisibilityTimeout": math.ceil(seconds)} for i, r in enumerate(chunk)])
            took += [chunk[int(ok["Id"])] for ok in reply.get("Successful") or []]
        return took

    def reject(self, delivery: Delivery, *, requeue: bool, reason: str = "") -> None:
        receipt = delivery.tag
        if not isinstance(receipt, Receipt) or not self._live(receipt):
            return
        if requeue:
            self._show(delivery.queue, [receipt], 0)
            self._settled([receipt])
            return
        envelope = delivery.envelope
        body = replace(envelope, properties={**envelope.properties, REASON: reason}).to_json(
            delivery.queue + DEAD_LETTER_SUFFIX)
        self._bury(delivery.queue, receipt, _encode(body), reason, delivery.delivery_count)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back unstarted messages: a copy that does not count this delivery, the
        original deleted (a FIFO queue's only made visible again, and counted)."""
        for d in deliveries:
            receipt = d.tag
            if not isinstance(receipt, Receipt) or not self._live(receipt):
                continue
            if is_fifo(d.queue):
                self._show(d.queue, [receipt], 0)
                self._settled([receipt])
                continue
            self._send(d.queue, [{"MessageBody": receipt.body, "MessageAttributes": _attributes(
                receipt.before + receipt.received - 1, receipt.not_before)}],
                what="a released message")
            self._delete(d.queue, [receipt])

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """ChangeMessageVisibilityBatch; one SQS no longer holds for this consumer (its lease
        ran out and another took it, or it is gone) is left as it is."""
        by_queue: dict[str, list[Receipt]] = {}
        with self._lock:
            for d in deliveries:
                if isinstance(d.tag, Receipt) and self._leases.get(d.tag.handle) != 0.0:
                    by_queue.setdefault(d.queue, []).append(d.tag)
        for queue, receipts in by_queue.items():
            began = time.time()
            took = self._show(queue, receipts, seconds)
            with self._lock:
                for receipt in took:
                    if self._leases.get(receipt.handle) != 0.0:
                        self._leases[receipt.handle] = began + seconds - MARGIN

    # ------------------------------------------------------------------ inspect

    def size(self, queue: str) -> int:
        """Waiting and delayed messages (SQS's approximate counts); held ones are not
        counted."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        reply = self.connection.call(queue, "get_queue_attributes", AttributeNames=names)
        return sum(int(reply.get("Attributes", {}).get(n, 0)) for n in names)

    def purge(self, queue: str) -> int:
        """PurgeQueue: every message of the queue goes, held ones too (SQS's purge; once a
        minute per queue); returns what `size` counted just before."""
        count = self.size(queue)
        self.connection.call(queue, "purge_queue")
        return count

    def dead_letters(self, queue: str, limit: int = 100) -> list[Delivery]:
        """The oldest messages of ``queue + ".dead"`` (or of its redrive policy's queue): read
        by receiving them, hidden while this reads and made visible again at once after."""
        dead = queue + DEAD_LETTER_SUFFIX
        seen: dict[str, tuple[float, Delivery]] = {}
        receipts: list[Receipt] = []
        while len(seen) < limit:
            reply = self.connection.call(
                dead, "receive_message", MaxNumberOfMessages=min(BATCH, limit - len(seen)),
                # A long poll asks every SQS server; a short one samples a few, and on AWS may
                # answer nothing while messages wait.
                WaitTimeSeconds=1, VisibilityTimeout=30,
                MessageSystemAttributeNames=SYSTEM_ATTRIBUTES, MessageAttributeNames=["All"])
            messages = reply.get("Messages") or []
            if not messages:
                break
            for message in messages:
                receipts.append(Receipt(message["ReceiptHandle"], ""))
                seen[message["MessageId"]] = self._dead_letter(dead, message)
        if receipts:
            self._show(dead, receipts, 0)
        return [d for _, d in sorted(seen.values(), key=lambda pair: pair[0])][:limit]

    @staticmethod
    def _dead_letter(dead: str, message: dict[str, Any]) -> tuple[float, Delivery]:
        attributes = message.get("MessageAttributes") or {}
        system = message.get("Attributes") or {}
        received = int(system.get("ApproximateReceiveCount", 1))
        try:
            envelope = Envelope.from_json(_decode(message["Body"]))
        except DecodeError:
            envelope = Envelope(message["Body"].encode(), {})
        reason = attributes.get(REASON_ATTRIBUTE, {}).get("StringValue") or \
            envelope.properties.get(REASON) or \
            f"moved by the queue's redrive policy after {received} receives"
        count = int(_float(attributes.get(DELIVERIES)) or received)
        sent = float(system.get("SentTimestamp", 0))
        return sent, Delivery(None, dead, envelope, count, {"reason": str(reason)})

    def close(self) -> None:
        self._closed.set()
        self.connection.close()


def _encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode(body: str) -> bytes:
    """kombu's body: base64 of the JSON envelope, or (``sqs_base64_encoding`` off) the JSON."""
    text = body.strip()
    if text.startswith("{"):
        return text.encode()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


def _number(value: str) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": value}


def _float(attribute: dict[str, Any] | None) -> float | None:
    if not attribute:
        return None
    try:
        return float(attribute.get("StringValue", ""))
    except ValueError:
        return None


def _attributes(before: int, not_before: float | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {DELIVERIES: _number(str(max(0, before)))}
    if not_before is not None:
        attributes[NOT_BEFORE] = _number(repr(not_before))
    return attributes


def _fifo_fields(envelope: Envelope) -> dict[str, str]:
    """MessageGroupId and MessageDeduplicationId (see the module doc)."""
    props, headers = envelope.properties, envelope.headers
    group = props.get("MessageGroupId") or headers.get("MessageGroupId") or \
        headers.get("task") or "default"
    dedup = props.get("MessageDeduplicationId") or headers.get("MessageDeduplicationId") or \
        f"{headers.get('id')}-{headers.get('retries') or 0}"
    return {"MessageGroupId": _DEDUP.sub("_", str(group))[:128],
            "MessageDeduplicationId": _DEDUP.sub("_", str(dedup))[:128]}


def _batches(entries: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """`entries` in runs of at most 10 and 256 KiB of bodies."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        length = len(entry["MessageBody"])
        if batch and (len(batch) == BATCH or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += length
    if batch:
        yield batch


__all__ = ["Receipt", "SQSTransport"]
