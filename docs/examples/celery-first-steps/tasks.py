# Celery's "First steps with Celery" application, on kernel: only the import line changed
# (it was `from celery import Celery`).
from kernel import Celery

app = Celery("tasks", broker="redis://localhost:6379/0", backend="redis://localhost:6379/0")


@app.task
def add(x, y):
    return x + y
