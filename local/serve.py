"""``chalice local``, one request at a time per process, as one Lambda container works.

Chalice keeps the current request on the app object, and ``chalice local``
serves each connection in its own thread, so two concurrent requests can see
each other's request. In AWS that cannot happen (a Lambda container handles one
event at a time); here a lock around each request gives the same guarantee.
Run several processes to get several "containers".

Chalice's handler binds ``do_GET``, ``do_POST``, ... to its own ``_generic_handle``
when its class is created, so overriding ``_generic_handle`` alone changes nothing:
the ``do_*`` names are bound again below, to the locked method.

Connections that arrive while a request runs wait, as API Gateway queues them for a
busy container: each connection still gets its thread at once (it waits on the lock,
not in the kernel), and the listen backlog is large enough for a burst of them.

SIGTERM and SIGINT stop the server: the handler only sets a flag; the main thread
shuts the server down and closes its socket.

    python -m local.serve --port 8000 [--stage local]
"""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, LocalDevServer, ThreadedHTTPServer

ROOT = Path(__file__).resolve().parent.parent
_one_at_a_time = threading.Lock()
# The listen(2) backlog: connections the kernel holds before the server accepts them (the
# kernel caps it at net.core.somaxconn). http.server's default is 5.
LISTEN_BACKLOG = 1024


class OneAtATimeHandler(ChaliceRequestHandler):
    def _one_at_a_time(self) -> None:
        with _one_at_a_time:
            ChaliceRequestHandler._generic_handle(self)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _one_at_a_time


class QueueingServer(ThreadedHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def make_server(app: Any, config: Any, host: str, port: int) -> LocalDevServer:
    return LocalDevServer(app, config, host, port, handler_cls=OneAtATimeHandler, server_cls=QueueingServer)


def build(host: str, port: int, stage: str) -> LocalDevServer:
    from chalice.cli.factory import CLIFactory
    from chalice.local import CustomLocalChalice, LocalChalice

    factory = CLIFactory(str(ROOT))
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = factory.load_chalice_app(config.environment_variables)
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return make_server(app, config, host, port)


def serve_until_signalled(server: LocalDevServer) -> None:
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    thread = threading.Thread(target=server.serve_forever, name="chalice-local", daemon=True)
    thread.start()
    while not stopping.is_set() and thread.is_alive():
        stopping.wait(0.5)
    server.shutdown()  # from this thread, not the serving one (it would deadlock)
    server.server.server_close()
    thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args()
    serve_until_signalled(build(args.host, args.port, args.stage))


if __name__ == "__main__":
    main()
