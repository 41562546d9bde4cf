"""A graceful stop that says so first: on SIGTERM, `/readyz` answers 503, then the drain.

BentoML's workers run uvicorn, which on SIGTERM stops accepting connections, finishes
the requests in flight and exits; BentoML's supervisor waits for it. What it does not
do is warn a load balancer: `/readyz` goes from 200 straight to "connection refused".
`install(delay_s)` wraps uvicorn's SIGTERM handler in the worker: `/readyz` answers 503
at once (`ReadyUntilDrain`), every other request is still served for `delay_s`
(`RISKBENTO_DRAIN_DELAY_S`), then uvicorn's own shutdown drains and stops. A second
SIGTERM, or SIGINT, stops without the delay.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)

DRAINING = threading.Event()
READY_PATH = "/readyz"


def install(delay_s: float) -> bool:
    """Wrap the running server's SIGTERM handler (uvicorn's, installed before the service
    starts). False where there is none to wrap: not the main thread, or no Python handler."""
    if threading.current_thread() is not threading.main_thread():
        return False
    stop = signal.getsignal(signal.SIGTERM)
    if not callable(stop):
        return False

    def on_sigterm(sig: int, frame: Any) -> None:
        if DRAINING.is_set() or delay_s <= 0:
            DRAINING.set()
            stop(sig, frame)
            return
        DRAINING.set()
        logger.info("SIGTERM: /readyz answers 503; serving %.1f s more, then draining", delay_s)
        threading.Timer(delay_s, stop, (sig, None)).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


class ReadyUntilDrain:
    """ASGI middleware: 503 on `/readyz` once draining; everything else passes."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if DRAINING.is_set() and scope["type"] == "http" and scope["path"] == READY_PATH:
            answer = JSONResponse({"status": "draining"}, status_code=503)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)
