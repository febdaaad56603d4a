"""Starting a strategy's child process in the trio thread, and waiting for it without a thread.

The rules this module keeps (DESIGN.md rules 1 and 11):

* The child is forked by the thread that runs trio, never by a worker thread. The child asks
  the kernel for ``PR_SET_PDEATHSIG``, which fires when the *thread* that forked it ends, and
  trio's own ``open_process`` forks in a worker thread that ends after ten idle seconds: the
  child would be killed ten seconds into the run. The fork and exec block the loop briefly
  (0.1 ms to a few ms, measured on a loaded 2-core machine), once per start of a child.
* Waiting is on a pidfd (``os.pidfd_open``: Linux 5.3+): readable once the child has exited,
  so :meth:`Child.wait` needs no thread and no SIGCHLD handler. Then the child is reaped.
  Where there is no pidfd, trio's ``open_process`` is used (and no death signal is asked for).
* :meth:`Child.kill` is safe until the child is reaped (its pid cannot be reused before).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Protocol

import trio

__all__ = ["Child", "spawn"]


class Child(Protocol):
    """What the parent needs of a child process (trio's Process has it too)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def kill(self) -> None: ...

    async def wait(self) -> int: ...


class PidfdChild:
    """A child forked in this thread, waited for on its pidfd."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._pidfd: int | None = os.pidfd_open(popen.pid)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    def kill(self) -> None:
        if self._popen.returncode is None:
            self._popen.kill()

    async def wait(self) -> int:
        """Wait until it exited, and reap it. Cancelling it leaves the child running."""
        if self._popen.returncode is None:
            assert self._pidfd is not None
            await trio.lowlevel.wait_readable(self._pidfd)
            self._popen.wait()  # it has exited: this returns at once, and reaps it
            self._close_pidfd()
        else:
            await trio.lowlevel.checkpoint()
        returncode = self._popen.returncode
        assert returncode is not None
        return returncode

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            trio.lowlevel.notify_closing(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


def _fork_here(args: Sequence[str], pass_fds: Sequence[int]) -> subprocess.Popen[bytes]:
    """Fork and exec in the calling thread (the trio thread; see the module rules)."""
    return subprocess.Popen(
        list(args), pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL, start_new_session=True
    )


async def spawn(args: Sequence[str], *, pass_fds: Sequence[int]) -> Child:
    """Start ``args`` in its own session with standard input closed; see the module rules."""
    if not hasattr(os, "pidfd_open"):
        return await trio.lowlevel.open_process(
            list(args), pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL, start_new_session=True
        )
    await trio.lowlevel.checkpoint()
    return PidfdChild(_fork_here(args, pass_fds))
