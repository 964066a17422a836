"""``chalice local``, one request at a time per process, as one Lambda container works.

Chalice keeps the current request on the app object, and ``chalice local``
serves each connection in its own thread, so two concurrent requests can see
each other's request. In AWS that cannot happen (a Lambda container handles one
event at a time); here a lock around each request gives the same guarantee.
Run several processes to get several "containers".

    python -m local.serve --port 8000 [--stage local]
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

from chalice.local import ChaliceRequestHandler, LocalDevServer

ROOT = Path(__file__).resolve().parent.parent
_one_at_a_time = threading.Lock()


class OneAtATimeHandler(ChaliceRequestHandler):
    def _generic_handle(self) -> None:
        with _one_at_a_time:
            super()._generic_handle()


def build(host: str, port: int, stage: str) -> LocalDevServer:
    from chalice.cli.factory import CLIFactory
    from chalice.local import CustomLocalChalice, LocalChalice

    factory = CLIFactory(str(ROOT))
    config = factory.create_config_obj(chalice_stage_name=stage)
    app = factory.load_chalice_app(config.environment_variables)
    CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
    app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=OneAtATimeHandler)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args()
    build(args.host, args.port, args.stage).serve_forever()


if __name__ == "__main__":
    main()
