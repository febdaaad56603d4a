"""A real Jupyter kernel for tests: this venv's Python running ipykernel, found through a
kernel spec written to a temporary folder (nothing is installed for the user)."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

KERNEL_NAME = "trio-trade-test"


@contextmanager
def kernel_spec_manager() -> Iterator[KernelSpecManager]:
    """A KernelSpecManager that knows one kernel, :data:`KERNEL_NAME`: ``sys.executable -m
    ipykernel_launcher``, so the kernel imports this checkout's ``trading``."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / KERNEL_NAME
        spec.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "trio-trade (tests)", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        yield KernelSpecManager(kernel_dirs=[folder])


def kernel_manager(specs: KernelSpecManager) -> KernelManager:
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


@attrs.frozen
class CellResult:
    status: str  # "ok" or "error"
    stdout: str
    ename: str | None


@contextmanager
def running_kernel(cwd: Path) -> Iterator[Any]:
    """A started kernel's manager and blocking client; shut down (bounded) afterwards."""
    with kernel_spec_manager() as specs:
        manager = kernel_manager(specs)
        manager.start_kernel(cwd=str(cwd))
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            yield manager, client
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def execute(client: Any, code: str, timeout: float = 30) -> CellResult:
    """Run one cell; its status, what it printed, and the name of the error it raised."""
    out: list[str] = []
    ename: list[str] = []

    def hook(message: dict[str, Any]) -> None:
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            ename.append(content["ename"])

    reply = client.execute_interactive(code, timeout=timeout, output_hook=hook)
    status = reply["content"]["status"]
    return CellResult(status, "".join(out), ename[0] if ename else None)
