"""Checked by mypy in test_typed_signatures.py; lines marked `E:` must be rejected."""

from kernel import App, AsyncResult, shared_task

app = App("typing", autoload=False)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


ok_sync: AsyncResult[int] = add.delay(1, 2)
ok_async: AsyncResult[bytes] = fetch.delay("http://example")
value: int = add(1, 2)
got: int = add.delay(1, 2).get(timeout=1)

add.delay("x", 2)  # E: wrong argument type
add.delay(1)  # E: missing argument
fetch.delay(3)  # E: wrong argument type
wrong: AsyncResult[str] = add.delay(1, 2)  # E: result type is int


@shared_task
def mul(x: int, y: int) -> int:
    return x * y


@shared_task(name="typing.greet")
def greet(name: str) -> str:
    return f"hello {name}"


ok_shared: AsyncResult[int] = mul.delay(2, 3)
greeted: AsyncResult[str] = greet.delay("you")
mul.delay("x", 3)  # E: wrong argument type
mul.delay_on_commit(2)  # E: missing argument
greet.delay(1)  # E: wrong argument type
