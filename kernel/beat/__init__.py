"""Beat, the periodic-task service: entries (`kernel.beat.entries`), an app's periodic tasks and
the dynamic API (``app.beat``, `kernel.beat.periodic`), the service any number of processes run
with one leader and each tick sent once (`kernel.beat.service`), and its worker step
(``kernel worker -B``). See docs/user-guide/periodic-tasks.md."""

from kernel.beat.entries import Entry
from kernel.beat.periodic import Periodic
from kernel.beat.service import BEAT_HEADER, BeatService

__all__ = ["BEAT_HEADER", "BeatService", "Entry", "Periodic"]
