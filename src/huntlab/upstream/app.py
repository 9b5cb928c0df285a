"""The collector's HTTP surface (ASGI, Starlette on uvicorn): /v1/upstream, /healthz, /metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from huntlab.errors import HuntlabError
from huntlab.upstream.collector import BadRequest, Collector

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

    from huntlab.workspace import Workspace

log = logging.getLogger("huntlab.upstream")


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it grows past the limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(
            f"the body is over the size limit of {limit:,} bytes", "Split the batch", status=413
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(
                f"the body is over the size limit of {limit:,} bytes", "Split the batch", status=413
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-client-key")


def create_app(collector: Collector) -> Starlette:
    """The ASGI application around one Collector."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def upstream(request: Request) -> Any:
        try:
            product = collector.product_for(_key(request))
            body = await _read_limited(request, collector.cfg.max_body_bytes)
            gz = "gzip" in request.headers.get("content-encoding", "").lower()
            # Decoding, anonymizing and fsync run off the event loop.
            ack = await run_in_threadpool(
                collector.ingest,
                body,
                product=product,
                peer_ip=request.client.host if request.client else None,
                batch_id=request.headers.get("x-batch-id"),
                gzipped=gz,
            )
        except BadRequest as exc:
            if exc.status == 401:
                collector.metrics.add("bad_requests")
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except HuntlabError as exc:  # e.g. the log's disk is full: tell the client to retry
            log.error("batch not stored: %s", exc)
            return JSONResponse({"error": f"not stored, retry later: {exc}"}, status_code=503)
        return JSONResponse(ack.body())

    async def healthz(_request: Request) -> Any:
        return JSONResponse({"status": "ok"})

    async def metrics(_request: Request) -> Any:
        return PlainTextResponse(collector.metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        # uvicorn re-raises SIGTERM after its graceful shutdown, so code after uvicorn.run may
        # never run: the workers and the log are closed here, while shutting down.
        collector.close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/upstream", upstream, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
    )


@contextmanager
def running_collector(ws: Workspace, keys: dict[bytes, str] | None = None) -> Iterator[str]:
    """A collector on a free loopback port in this process (for the demo); yields its URL."""
    import threading
    import time

    import uvicorn

    from huntlab.net import free_port

    port = free_port()
    collector = Collector(ws, keys, workers=0)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(collector),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise HuntlabError(
                    f"the collector did not start on 127.0.0.1:{port}",
                    "Run with --debug to see why",
                )
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        collector.close()


def serve(ws: Workspace, host: str | None = None, port: int | None = None) -> None:
    """Run the collector until interrupted."""
    import uvicorn

    collector = Collector(ws)
    collector.start()
    cfg = ws.config.upstream
    try:
        uvicorn.run(
            create_app(collector),
            host=host or cfg.host,
            port=port or cfg.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        collector.close()
