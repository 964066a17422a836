"""Start and stop Amazon's DynamoDB Local (from the npm package amplify-dynamodb-simulator).

Listens on 127.0.0.1 traffic only from us; the caller stops it by process id.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / ".tools" / "dynamodb-local" / "emulator"


def stop_process(process: subprocess.Popen, grace_s: float = 10) -> None:
    """Stop a child we started, by its process id: SIGTERM, then SIGKILL after a grace period."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class DynamoDBLocal:
    process: subprocess.Popen
    endpoint: str

    def stop(self) -> None:
        stop_process(self.process)


def available() -> Optional[str]:
    """Why DynamoDB Local cannot start here, or None if it can."""
    if shutil.which("java") is None:
        return "java is not installed (DynamoDB Local needs Java 17)"
    if not (EMULATOR / "DynamoDBLocal.jar").exists():
        return f"{EMULATOR}/DynamoDBLocal.jar is missing (run `make tools`)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: Optional[Path] = None, port: Optional[int] = None) -> DynamoDBLocal:
    why = available()
    if why:
        raise RuntimeError(why)
    port = port or free_port()
    cmd = ["java", f"-Djava.library.path={EMULATOR / 'DynamoDBLocal_lib'}", "-Xmx512m", "-jar",
           str(EMULATOR / "DynamoDBLocal.jar"), "-port", str(port), "-disableTelemetry"]
    if data_dir is None:
        cmd.append("-inMemory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["-sharedDb", "-dbPath", str(data_dir)]
    # DynamoDB Local writes a metadata file into its working directory: keep it out of the checkout.
    workdir = data_dir or Path(tempfile.mkdtemp(prefix="ddblocal-"))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("DynamoDB Local exited: " + (proc.stderr.read() or b"").decode()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return DynamoDBLocal(proc, f"http://127.0.0.1:{port}")
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("DynamoDB Local did not start within 60 s")
