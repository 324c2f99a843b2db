"""A private network namespace for tests that need a non-loopback address.

baresip refuses loopback as its network address, so real-peer tests run it (and
whatever it talks to) inside a namespace of their own: ``lo`` up plus a veth
pair whose both ends stay inside, one end holding ``10.99.0.1/24``.  Traffic
never leaves the namespace.  Needs root (or CAP_SYS_ADMIN), ``unshare``,
``nsenter`` and ``ip``.

    with NetNamespace() as ns:
        proc = ns.popen(["baresip", "-f", str(confdir)])
        ns.run(["ip", "-br", "addr"])
        sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM)   # lives in the namespace
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

logger = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetNamespaceError(Exception):
    """The namespace could not be created, configured or entered."""


class NetNamespace:
    """A network namespace held open by a placeholder process.

    The placeholder is ``unshare --net sh -c '... exec cat'``: it lives as
    long as its stdin pipe is open, so even if the test process dies without
    calling :meth:`stop`, the placeholder exits when the pipe closes.
    Processes started with :meth:`popen` keep the namespace alive on their
    own; stop them (by PID) before or after :meth:`stop`.
    """

    def __init__(
        self,
        address: str = "10.99.0.1/24",
        peer_address: str | None = None,
        veth: tuple[str, str] = ("v0", "v1"),
    ) -> None:
        """Describe the namespace; nothing happens until :meth:`start`.

        ``address`` goes on the first veth end, ``peer_address`` (optional) on
        the second; both are plain ``ADDR/PREFIX`` strings.
        """
        self.interface = ipaddress.ip_interface(address)
        self.peer_interface = ipaddress.ip_interface(peer_address) if peer_address else None
        self.veth = veth
        self._holder: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The namespace's main address without prefix, e.g. ``10.99.0.1``."""
        return str(self.interface.ip)

    @property
    def peer_host(self) -> str | None:
        """The second veth end's address without prefix, if one was given."""
        return str(self.peer_interface.ip) if self.peer_interface else None

    @property
    def pid(self) -> int:
        """PID of the placeholder process (the ``-t`` target for nsenter)."""
        if self._holder is None:
            raise NetNamespaceError("namespace not started")
        return self._holder.pid

    def start(self) -> None:
        """Create the namespace, bring ``lo`` up and configure the veth pair."""
        if self._holder is not None:
            raise NetNamespaceError("namespace already started")
        holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "echo ready; exec cat >/dev/null"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert holder.stdout is not None
        line = holder.stdout.readline()  # returns b"" at once if unshare failed
        if line != b"ready\n":
            _, err = holder.communicate(timeout=5)
            raise NetNamespaceError(
                f"unshare --net failed (exit {holder.returncode}): {err.decode(errors='replace')}"
            )
        holder.stdout.close()
        self._holder = holder
        logger.debug("network namespace held by pid %d", holder.pid)
        first, second = self.veth
        try:
            for argv in (
                ["ip", "link", "set", "lo", "up"],
                ["ip", "link", "add", first, "type", "veth", "peer", "name", second],
                ["ip", "addr", "add", str(self.interface), "dev", first],
                ["ip", "link", "set", first, "up"],
                ["ip", "link", "set", second, "up"],
            ):
                self.run(argv)
            if self.peer_interface is not None:
                self.run(["ip", "addr", "add", str(self.peer_interface), "dev", second])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self.stop()
            raise NetNamespaceError(f"configuring the namespace failed: {exc}") from exc
        self._wait_address_ready()
        logger.info("network namespace pid %d up with %s", holder.pid, self.interface)

    def _wait_address_ready(self, timeout: float = 5.0) -> None:
        """Wait until the address can be bound (IPv6 DAD, link up races)."""
        family = socket.AF_INET6 if self.interface.version == 6 else socket.AF_INET
        try:
            probe = self.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise NetNamespaceError(f"cannot create a socket in the namespace: {exc}") from exc
        with probe:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    probe.bind((self.host, 0))
                    return
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise NetNamespaceError(f"{self.host} never became bindable") from exc
                    time.sleep(0.02)  # polling a condition with a deadline

    def stop(self, timeout: float = 5.0) -> None:
        """End the placeholder (close its stdin, then kill by PID) and reap it."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        if holder.stdin is not None:
            holder.stdin.close()
        try:
            holder.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("namespace holder %d ignored EOF; killing it", holder.pid)
            holder.kill()
            holder.wait(timeout=timeout)
        if holder.stderr is not None:
            holder.stderr.close()
        logger.debug("network namespace holder %d exited %s", holder.pid, holder.returncode)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed so that it runs inside the namespace."""
        return ["nsenter", "-t", str(self.pid), "-n", "--", *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; keyword arguments go to Popen.

        nsenter execs ``argv``, so the returned ``Popen.pid`` is the command's
        own PID: stop it with ``terminate()``/``kill()`` and ``wait()``.
        """
        return subprocess.Popen(self.command(argv), **kwargs)

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside the namespace to completion (output captured as text)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run(self.command(argv), check=False, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            logger.error("%s failed: %s", " ".join(argv), result.stderr)
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, result.stderr
            )
        return result

    def socket(self, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM) -> socket.socket:
        """Create a socket that belongs to the namespace, usable from any thread.

        Network namespaces are per thread in Linux: a short-lived thread
        enters the namespace with setns(2) and creates the socket there.
        """
        path = f"/proc/{self.pid}/ns/net"
        created: list[socket.socket] = []
        errors: list[BaseException] = []

        def make() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    errors.append(OSError(err, f"setns({path}): {os.strerror(err)}"))
                    return
                created.append(socket.socket(family, kind))
            except OSError as exc:
                errors.append(exc)
            finally:
                os.close(fd)

        thread = threading.Thread(target=make, name="netns-socket")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return created[0]

    def __enter__(self) -> Self:
        """Start the namespace."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the namespace."""
        self.stop()

    def call(self, work: Callable[[], T], timeout: float = 300.0) -> T:
        """`work()` in a thread that entered the namespace (namespaces are per thread), so that
        every socket it opens and every process it starts is inside; its result, or its
        failure raised here."""
        results: list[T] = []
        failures: list[BaseException] = []

        def inside() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    failures.append(OSError(err, f"setns: {os.strerror(err)}"))
                    return
            finally:
                os.close(fd)
            try:
                results.append(work())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                failures.append(exc)

        thread = threading.Thread(target=inside, name="in-netns")
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError(f"{work} did not end in {timeout} s")
        if failures:
            raise failures[0]
        return results[0]
