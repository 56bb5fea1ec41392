"""The ASGI server: uvicorn running the app built from $FEEDPIPE_CONFIG in each worker process."""

from __future__ import annotations

import os

import uvicorn

from feedpipe.envnames import ACCESS_LOG_ENV


def run_server(*, host: str, port: int, workers: int, proxy_headers: bool) -> None:
    """Serve until interrupted; each uvicorn worker builds its own app (`app_from_environment`)."""
    uvicorn.run(
        "feedpipe.web.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=proxy_headers,
        server_header=False,
        access_log=False,
        log_level="info",
    )


def app_from_environment() -> object:
    """The ASGI app for uvicorn's workers: settings from $FEEDPIPE_CONFIG, outbox mailer."""
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings
    from feedpipe.web import WebConfig, create_app
    from feedpipe.web.outbox import OutboxMailer

    service = Feedpipe.from_settings(load_settings())
    app = create_app(service, OutboxMailer(service), WebConfig.from_env())
    if service.settings.web.access_log or os.environ.get(ACCESS_LOG_ENV) == "1":
        from feedpipe.web.accesslog import AccessLog

        return AccessLog(app)
    return app
