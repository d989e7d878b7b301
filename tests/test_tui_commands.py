"""``orm-inspector demo``, ``connect`` and ``replay`` as a user runs them: a real process in a real
pseudo-terminal, showing the screen, quitting on ``q`` with status 0 and the terminal restored; and
one clear line with a non-zero status for what a user can get wrong."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TRACE = Path(__file__).parent / "data" / "bookshop.jsonl"
CLI = [sys.executable, "-m", "orm_inspector"]


class Terminal:
    """A command in a pseudo-terminal of 120x40, its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the command, on the terminal
            os.environ.update({"COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color", **(env or {})})
            os.execvp(args[0], args)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.output = b""

    def read_until(self, text: bytes, timeout: float = 20.0) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"{text!r} not shown; got {self.output[-2000:]!r}"
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the command exited
                    raise AssertionError(f"exited before showing {text!r}: {self.output[-2000:]!r}") from None
        return self.output

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if ready:
                    self.output += os.read(self.fd, 65536)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        raise AssertionError(f"did not exit; screen: {self.output[-2000:]!r}")


def assert_restored(output: bytes) -> None:
    """Textual leaves the alternate screen and shows the cursor again on the way out."""
    tail = output[-400:]
    assert b"\x1b[?1049l" in tail and b"\x1b[?25h" in tail


def test_replay_opens_a_trace_and_quits_on_q():
    term = Terminal([*CLI, "replay", str(TRACE)])
    term.read_until(b"Overview")
    term.read_until(b"seq 1091/1091")
    term.type("q")
    assert term.wait() == 0
    assert_restored(term.output)


def test_demo_shows_the_clerks_live_and_quits_on_ctrl_c():
    term = Terminal([*CLI, "demo", "--pause", "0.05"])
    term.read_until(b"clerk-", timeout=30)
    term.type("\x03")  # ctrl+c
    assert term.wait() == 0
    assert_restored(term.output)


def test_connect_attaches_to_an_app_started_with_run_listen(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent("""
        import time
        from sqlalchemy import create_engine, text
        from sqlalchemy.orm import Session
        engine = create_engine("sqlite://")
        for i in range(600):
            with Session(engine) as s:
                s.execute(text("SELECT 'visible to the viewer'"))
            time.sleep(0.05)
    """))
    sock = tmp_path / "live.sock"
    token_file = None
    program = subprocess.Popen([*CLI, "run", "--listen", f"unix:{sock}", "--", sys.executable, str(app)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert time.monotonic() < deadline and program.poll() is None, program.stderr.read()
            time.sleep(0.05)
        line = program.stderr.readline().decode()
        token_file = Path(line.rsplit("token in ", 1)[1].strip())
        term = Terminal([*CLI, "connect", f"unix:{sock}", f"--token={token_file.read_text().strip()}"])
        term.read_until(b"Overview")
        term.type("5")  # the SQL log
        term.read_until(b"visible to the viewer")
        term.type("q")
        status = term.wait()
        assert status == 0, term.output[-3000:]
        assert_restored(term.output)
    finally:
        program.kill()
        program.wait()
        if token_file is not None:  # killed: nothing removed the token's private directory
            shutil.rmtree(token_file.parent, ignore_errors=True)


@pytest.mark.parametrize(("args", "message"), [
    (["replay", "/no/such/trace.jsonl"], "no such file"),
    (["connect", "unix:/no/such/socket", "--token", "x"], "cannot connect"),
    (["connect", "not an address", "--token", "x"], "expected HOST:PORT"),
])
def test_user_errors_are_one_line_and_a_non_zero_status(args, message):
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_a_wrong_token_is_one_line(tmp_path):
    import orm_inspector

    server = orm_inspector.serve()
    try:
        done = subprocess.run([*CLI, "connect", server.address, "--token", "wrong"], capture_output=True,
                              text=True, timeout=60)
    finally:
        server.close()
    assert done.returncode == 2 and "wrong token" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_tokens_can_follow_an_option_on_a_command_line():
    """A token beginning with '-' would be taken for an option (--token -x...): they never do."""
    import orm_inspector

    server = orm_inspector.serve()
    try:
        assert set(server.token) <= set("0123456789abcdef") and len(server.token) >= 32
    finally:
        server.close()
