"""A real process on a pseudo-terminal, and what a terminal would show of it.

`Screen` is enough of an xterm for prompt_toolkit's prompt (text, CR/LF/backspace, cursor moves, erases,
and the cursor position report it asks for); lines never scroll away, so a test reads the whole session.
`Terminal` runs a command on a pty (pexpect), feeds its output to a Screen, answers its questions as a
terminal does, and types as a person does, one key at a time.
"""

from __future__ import annotations

import re
import signal
import termios
import time
import unicodedata
from collections.abc import Callable

import pexpect

_TOKEN = re.compile(
    r"\x1b\[([0-9;?<=>]*)[ -/]*([@-~])"  # CSI: parameters, final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC (window title ...)
    r"|\x1b[()][0-9A-Za-z]"  # character set
    r"|\x1b[^\[\]()]"  # other two-byte escapes
    r"|[\r\n\b\t\x07]"
    r"|[^\x1b\r\n\b\t\x07]+"
)


def _width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


class Screen:
    def __init__(self, rows: int = 50) -> None:
        self.rows = rows
        self._lines: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        self._pending = ""

    @property
    def lines(self) -> list[str]:
        return ["".join(cells).rstrip() for cells in self._lines]

    @property
    def cursor_line(self) -> str:
        return self.lines[self.row]

    def text(self) -> str:
        return "\n".join(self.lines)

    def feed(self, data: str) -> str:
        """Show `data`; returns what the terminal answers (cursor position reports)."""
        data = self._pending + data
        self._pending = ""
        answers = []
        pos = 0
        while pos < len(data):
            m = _TOKEN.match(data, pos)
            if m is None:  # an escape sequence cut in two by the read: wait for the rest
                self._pending = data[pos:]
                break
            pos = m.end()
            token = m.group(0)
            if token.startswith("\x1b["):
                answers.append(self._csi(m.group(1), m.group(2)))
            elif token == "\r":
                self.col = 0
            elif token == "\n":
                self._move(self.row + 1, self.col)
            elif token == "\b":
                self.col = max(0, self.col - 1)
            elif token == "\t":
                self.col = (self.col // 8 + 1) * 8
            elif not token.startswith("\x1b") and token != "\x07":
                self._write(token)
        return "".join(answers)

    def _move(self, row: int, col: int) -> None:
        self.row, self.col = max(0, row), max(0, col)
        while len(self._lines) <= self.row:
            self._lines.append([])

    def _write(self, text: str) -> None:
        cells = self._lines[self.row]
        for ch in text:
            w = _width(ch)
            if w == 0:
                if self.col > 0 and self.col <= len(cells):
                    cells[self.col - 1] += ch
                continue
            while len(cells) < self.col + w:
                cells.append(" ")
            cells[self.col] = ch
            if w == 2:
                cells[self.col + 1] = ""
            self.col += w

    def _csi(self, params: str, final: str) -> str:
        private = params.startswith(("?", "<", "=", ">"))
        nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?<=>").split(";")] if params else []
        n = nums[0] if nums and nums[0] else 1
        top = max(0, len(self._lines) - self.rows)
        if private:
            return ""
        if final == "A":
            self._move(self.row - n, self.col)
        elif final == "B":
            self._move(self.row + n, self.col)
        elif final == "C":
            self.col += n
        elif final == "D":
            self.col = max(0, self.col - n)
        elif final == "G":
            self.col = n - 1
        elif final in "Hf":
            col = nums[1] if len(nums) > 1 and nums[1] else 1
            self._move(top + n - 1, col - 1)
        elif final == "J":
            mode = nums[0] if nums else 0
            if mode == 0:
                del self._lines[self.row][self.col :]
                del self._lines[self.row + 1 :]
            elif mode in (2, 3):
                self._lines = [[] for _ in range(self.row + 1)]
        elif final == "K":
            mode = nums[0] if nums else 0
            cells = self._lines[self.row]
            if mode == 0:
                del cells[self.col :]
            elif mode == 1:
                cells[: self.col] = [" "] * min(self.col, len(cells))
            else:
                cells.clear()
        elif final == "n" and n == 6:  # "where is the cursor?"
            return f"\x1b[{min(self.row - top + 1, self.rows)};{self.col + 1}R"
        return ""


def _as_from_a_shell() -> None:
    """In the program's process before it starts: Ctrl-C's signal back to its default, as an interactive shell
    starts a program. An ignored signal stays ignored across exec, and a script started in the background
    (`cmd &` from a non-interactive shell) ignores SIGINT: pytest run that way would hand the demo a Ctrl-C
    it cannot hear, and the test of Ctrl-C would fail for how it was started, not for the demo."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """`argv` on a pseudo-terminal of `rows` x `cols`, shown on a Screen."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 50, cols: int = 250) -> None:
        self.screen = Screen(rows)
        self.raw: list[str] = []
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", codec_errors="replace",
                                   dimensions=(rows, cols), echo=True, preexec_fn=_as_from_a_shell)

    def pump(self, timeout: float = 0.1) -> bool:
        """Read what the program printed (waiting up to `timeout` for it); False once it has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw.append(data)
        answer = self.screen.feed(data)
        if answer:
            self.child.send(answer)
        return True

    def wait_until(self, ready: Callable[[Screen], object], timeout: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.screen):
            if time.monotonic() > deadline or not self.pump():
                if ready(self.screen):
                    return
                raise AssertionError(f"{what or 'the screen'} not there after {timeout} s; the screen:\n"
                                     + self.screen.text())

    def shows(self, text: str, timeout: float = 60.0) -> None:
        self.wait_until(lambda s: text in s.text(), timeout, repr(text))

    def type(self, text: str, per_key: float = 0.06) -> None:
        """Type `text` as a person does, a key at a time, reading the screen meanwhile."""
        for ch in text:
            self.child.send(ch)
            self.pump(per_key)

    def pause(self, seconds: float) -> None:
        """Read the screen for a while (a person reading), without typing."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.pump(min(0.1, max(0.0, deadline - time.monotonic()))):
            pass

    def tty_mode(self) -> set[str]:
        """Which of ECHO, ICANON and ISIG the program has set on its terminal (pexpect's getecho reads the
        same attributes from the pty's master side)."""
        lflag = termios.tcgetattr(self.child.child_fd)[3]
        return {name for name in ("ECHO", "ICANON", "ISIG") if lflag & getattr(termios, name)}

    def exit_status(self, timeout: float = 30.0) -> int | None:
        """Wait for the program to end; its exit status (None when a signal ended it)."""
        deadline = time.monotonic() + timeout
        while self.pump():
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; the screen:\n" + self.screen.text())
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
