# The kernel App is created whenever Django starts, so @shared_task and delay_on_commit find it
# (Celery's proj/__init__.py does the same with its celery.py).
from proj.kernel import app as kernel_app

__all__ = ("kernel_app",)
