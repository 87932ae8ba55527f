"""All five vendor simulators on one loopback port, each under its own path prefix."""

from __future__ import annotations

import time

from aiohttp import web

from bot.offline.loopback import serve
from bot.offline.vendors.core import Clock, VendorSim
from bot.offline.vendors.epm_di import EpmDiSim
from bot.offline.vendors.epm_planning import PlanningSim
from bot.offline.vendors.fusion import FusionSim
from bot.offline.vendors.immuta import ImmutaSim
from bot.offline.vendors.vault import VaultSim

PREFIXES = {
    "fusion_jobscheduler": "/fusion",
    "veeva_vault": "/vault",
    "epm_data_integration": "/epm-di",
    "epm_planning": "/planning",
    "immuta": "/immuta",
}


class SimulatorServer:
    """Runs the simulators on 127.0.0.1 (port 0 = any free port) until `stop()`."""

    def __init__(self, clock: Clock = time.time, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.fusion = FusionSim(clock)
        self.vault = VaultSim(clock)
        self.epm_di = EpmDiSim(clock)
        self.planning = PlanningSim(clock)
        self.immuta = ImmutaSim(clock)
        self._runner: web.AppRunner | None = None

    @property
    def by_type(self) -> dict[str, VendorSim]:
        """The simulators by backend type."""
        return {
            "fusion_jobscheduler": self.fusion,
            "veeva_vault": self.vault,
            "epm_data_integration": self.epm_di,
            "epm_planning": self.planning,
            "immuta": self.immuta,
        }

    def base_url(self, type_name: str) -> str:
        return f"http://{self.host}:{self.port}{PREFIXES[type_name]}"

    def mount(self, type_name: str, sim: VendorSim) -> web.Application:
        """The sub-application `sim` answers from under its prefix: its own app, request log and all."""
        return sim.app()

    async def start(self) -> None:
        root = web.Application()
        for type_name, sim in self.by_type.items():
            root.add_subapp(PREFIXES[type_name], self.mount(type_name, sim))
        self._runner, self.port = await serve(root, self.host, self.port)
        for type_name, sim in self.by_type.items():
            sim.public_url = self.base_url(type_name)  # for the absolute links vendors put in answers

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
