# Celery's "Next steps" project layout, on kernel: only the import line changed (it was
# `from celery import Celery`). Celery's `if __name__ == "__main__": app.start()` is left out:
# start a worker with `kernel -A proj worker -l INFO`.
from kernel import Celery

app = Celery("proj",
             broker="redis://localhost:6379/0",
             backend="redis://localhost:6379/0",
             include=["proj.tasks"])

# Optional configuration, see the application user guide.
app.conf.update(
    result_expires=3600,
)
