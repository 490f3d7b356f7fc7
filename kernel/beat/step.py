"""``kernel worker -B``: the beat service inside a worker, as a bootstep. It runs where the
worker's steps run: in a worker without process pool, its one process; in a prefork worker,
each consumer process, every one a candidate for the lead (one leads, as between separate
beat processes; the others only look at the lease)."""

from __future__ import annotations

from kernel.beat.service import BeatService
from kernel.interfaces.bootstep import Bootstep, Deps


class BeatStep(Bootstep[BeatService | None]):
    """Starts the service when the app's ``worker_beat`` is set (``-B``); else does nothing."""

    name = "beat"

    def start(self, deps: Deps) -> BeatService | None:
        self.service: BeatService | None = None
        if deps.app.conf.worker_beat:
            self.service = BeatService(deps.app).start()
        return self.service

    def stop(self) -> None:
        if getattr(self, "service", None) is not None:
            assert self.service is not None
            self.service.stop()
