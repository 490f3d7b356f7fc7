"""Monitoring events, on Celery's wire format: sending (`EventDispatcher`, as ``app.events``),
receiving (`EventReceiver`) and the cluster picture kept from them (`State`)."""

from kernel.events.dispatcher import EventDispatcher
from kernel.events.receiver import EventReceiver
from kernel.events.state import State, TaskInfo, WorkerInfo

__all__ = ["EventDispatcher", "EventReceiver", "State", "TaskInfo", "WorkerInfo"]
