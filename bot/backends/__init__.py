"""Backend adapters: one module per vendor type, built from the config by `build_backend`."""

from __future__ import annotations

from typing import Protocol

from bot.backends.base import Backend
from bot.config import BackendConfig, ConfigError, Settings


class SecretStore(Protocol):
    """Where rotating credentials (EPM's single-use OAuth refresh token) are kept across restarts."""

    async def get_secret(self, key: str) -> str | None: ...

    async def put_secret(self, key: str, value: str) -> None: ...


def backend_classes() -> dict[str, type[Backend]]:
    from bot.backends.epm_di import EpmDataIntegration
    from bot.backends.epm_planning import EpmPlanning
    from bot.backends.fusion import FusionJobScheduler
    from bot.backends.immuta import Immuta
    from bot.backends.vault import VeevaVault

    return {
        cls.type_name: cls
        for cls in (FusionJobScheduler, VeevaVault, EpmDataIntegration, EpmPlanning, Immuta)
    }


def build_backend(name: str, config: BackendConfig, secrets: SecretStore | None = None) -> Backend:
    cls = backend_classes()[config.type]
    return cls(name, config, secrets=secrets)


def build_backends(settings: Settings, where: str, secrets: SecretStore | None = None) -> dict[str, Backend]:
    """Every configured backend; a setting an adapter cannot use is a ConfigError naming the file."""
    out: dict[str, Backend] = {}
    for name, cfg in settings.backends.items():
        try:
            out[name] = build_backend(name, cfg, secrets)
        except ConfigError as exc:
            text = str(exc) if f"'{name}'" in str(exc) else f"backend '{name}': {exc}"
            raise ConfigError(f"{where}: {text}") from None
    return out
