"""Alerts: always to the log, and to a Slack-compatible incoming webhook when configured."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson

from opencdp.logs import get_logger
from opencdp.settings import AlertSettings

log = get_logger(__name__)


class Alerter:
    """Sends alerts; a failing webhook is logged, never raised (alerts must not break runs)."""

    def __init__(self, settings: AlertSettings, timeout: float = 5.0) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, title: str, details: dict[str, object]) -> None:
        log.error("alert", title=title, **details)
        if self.settings.webhook_url is None:
            return
        lines = [f"*{title}*", *(f"• {k}: {v}" for k, v in details.items())]
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own setting
            self.settings.webhook_url.get_secret_value(),
            data=orjson.dumps({"text": "\n".join(lines)}),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310
                pass
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            log.warning("alert_webhook_failed", title=title, error=str(e))
