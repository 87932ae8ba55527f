"""Backend adapters: one module per vendor type, built from the config by `build_backend`.

What they share, leaves first: `values` (reading vendor values), `http` (the one HTTP client and the capped
body read), `slots` (a backend's concurrency cap), `auth` (the httpx.Auth flows), `base` (the Backend ABC).
What they answer with and raise is the domain's (bot/domain/: `status`, `states`, `errors`), so the store and
rendering never import an adapter for a type. The adapters: `fusion`, `vault`, `epm_common` with `epm_di` and
`epm_planning`, `immuta`.

May import: bot.metrics (what the bot tells Prometheus of every request), support and domain; never the
engine, operations, rendering, the ways in, `bot.app` or `bot.cli`.
"""

from __future__ import annotations

import logging

from bot.backends.auth import SecretStore
from bot.backends.base import Backend
from bot.backends.http import make_http_client
from bot.backends.slots import UsersFirst
from bot.metrics import Metrics
from bot.support.config import BackendConfig, ConfigError, Settings
from bot.support.logs import about
from bot.support.network import in_clear

log = logging.getLogger(__name__)


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


def build_backend(name: str, config: BackendConfig, secrets: SecretStore | None = None,
                  metrics: Metrics | None = None, users: UsersFirst | None = None) -> Backend:
    """The adapter of `config.type`; with `metrics`, every request its HTTP client sends is timed there; with
    `users`, its slots go to those users' requests ahead of scheduled polls (else it has a priority of its
    own)."""
    cls = backend_classes()[config.type]
    http = make_http_client(config, metrics.vendor_request(name)) if metrics is not None else None
    backend = cls(name, config, secrets=secrets, http=http)
    if users is not None:
        backend.users_first(users)
    return backend


def build_backends(settings: Settings, where: str, secrets: SecretStore | None = None,
                   metrics: Metrics | None = None, users: UsersFirst | None = None) -> dict[str, Backend]:
    """Every configured backend; a setting an adapter cannot use is a ConfigError naming the file. With
    `users` (the Runtime's one `UsersFirst`), their requests go ahead of scheduled polls for every backend's
    slots."""
    out: dict[str, Backend] = {}
    for name, cfg in settings.backends.items():
        try:
            out[name] = build_backend(name, cfg, secrets, metrics, users)
        except ConfigError as exc:
            text = str(exc) if f"'{name}'" in str(exc) else f"backend '{name}': {exc}"
            raise ConfigError(f"{where}: {text}") from None
        floor = out[name].min_poll_interval
        if cfg.poll_interval < floor:
            why = out[name].min_poll_reason or "the vendor's own limit"
            log.warning("backend '%s': poll_interval %gs is below %gs (%s); polling every %gs",
                        name, cfg.poll_interval, floor, why, floor, extra=about(name))
        clear = [u for u in (cfg.base_url, getattr(cfg.auth, "token_url", None)) if u and in_clear(u)]
        if clear:
            log.warning("backend '%s': %s is plain http://: its credentials and answers cross the network "
                        "unencrypted; use https://", name, " and ".join(clear), extra=about(name))
    return out
