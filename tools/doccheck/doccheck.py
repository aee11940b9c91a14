#!/usr/bin/env python3
"""Run the command blocks of Markdown docs; fail when a page no longer tells the truth.

Docs that are only read drift: a flag gets renamed, an output gains a field, a step stops
being needed, and nobody notices until a reader does. Docs that are run can't drift, so
every ```console block is executed here and its output and exit status compared with what
the page shows. Shell blocks written as ```sh (or bash, shell, zsh) are rejected, so that
no command on a checked page escapes the check. See README.md next to this file.

Usage: doccheck.py [--workdir DIR] [--env NAME=VALUE ...] [--keep-going] [--list] FILE...
"""

import argparse
import difflib
import os
import re
import secrets
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

SHELL_LANGUAGES = {"sh", "bash", "shell", "zsh"}
DEFAULT_TIMEOUT = 300
DEFAULT_BACKGROUND_TIMEOUT = 600
KILL_GRACE = 10  # seconds between SIGTERM and SIGKILL for background processes
LOG_TAIL = 20  # log lines shown when a background command fails
PROGRESS_WIDTH = 100

OPEN_FENCE = re.compile(r"^([ \t]*)(`{3,}(?=[^`]*$)|~{3,})(.*)$")
CLOSE_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*$")
EXIT_LINE = re.compile(r"\[exit: (\d+)\]")
# bash -n reports these when the text so far is the beginning of a longer command.
INCOMPLETE = re.compile(r"unexpected EOF|unexpected end of file|delimited by end-of-file")
MORE = object()  # check_syntax: the command continues on the next line
ANY_LINES = "..."
PLACEHOLDERS = {
    "[..]": r".*",
    "[int]": r"-?\d+",
    "[num]": r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?",
    "[time]": r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
    "[hex]": r"[0-9a-fA-F]+",
    "[secret]": r"\S+",
}
PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


class FormatError(Exception):
    """A page that cannot be checked as written; reported with exit status 2."""


@dataclass
class Command:
    path: str
    line: int
    text: str
    expected: list
    status: int
    timeout: float
    background: bool

    @property
    def where(self):
        return f"{self.path}:{self.line}"


@dataclass
class Skipped:
    path: str
    line: int
    reason: str

    @property
    def where(self):
        return f"{self.path}:{self.line}"


@dataclass
class Doc:
    path: str
    commands: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


# ---------------------------------------------------------------- parsing


def parse_file(path):
    """Read one page into its commands; return (Doc, list of format error messages)."""
    doc = Doc(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\r") for line in f.read().split("\n")]
    except (OSError, UnicodeDecodeError) as e:
        return doc, [f"cannot read {path}: {e}"]
    errors = []
    try:
        for fence_line, info, body in fenced_blocks(path, lines):
            try:
                parse_block(doc, fence_line, info, body)
            except FormatError as e:
                errors.append(str(e))
    except FormatError as e:
        errors.append(str(e))
    return doc, errors


def fenced_blocks(path, lines):
    """Yield (line number, info string, body lines) per fenced block.

    A closing fence must use the opening fence's character and be at least as long, so
    blocks that show other blocks (````markdown around ```sh) stay one block. An unclosed
    fence is an error: it would silently swallow the rest of the page.
    """
    i = 0
    while i < len(lines):
        opening = OPEN_FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, info = len(opening[1]), opening[2], opening[3].strip()
        end = i + 1
        while end < len(lines) and not closes(lines[end], fence):
            end += 1
        if end == len(lines):
            raise FormatError(f"unclosed fence at {path}:{i + 1}")
        yield i + 1, info, [dedent(line, indent) for line in lines[i + 1 : end]]
        i = end + 1


def closes(line, fence):
    match = CLOSE_FENCE.match(line)
    return bool(match) and match[1][0] == fence[0] and len(match[1]) >= len(fence)


def dedent(line, indent):
    """Remove the fence's own indentation (a block inside a list item) from a body line."""
    stripped = line.lstrip(" \t")
    return line[min(indent, len(line) - len(stripped)) :]


def parse_block(doc, fence_line, info, body):
    words = info.split()
    language = words[0].lower() if words else ""
    where = f"{doc.path}:{fence_line}"
    if language in SHELL_LANGUAGES:
        raise FormatError(f"command block not in console form at {where}")
    if language != "console":
        return
    background, timeout, norun = parse_annotations(info, where)
    if norun is not None:
        doc.skipped.append(Skipped(doc.path, fence_line, norun))
        return
    if timeout is None:
        timeout = DEFAULT_BACKGROUND_TIMEOUT if background else DEFAULT_TIMEOUT
    commands = parse_console(doc.path, fence_line + 1, body, timeout, background)
    if background and len(commands) != 1:
        raise FormatError(f"a background block must hold exactly one command at {where}")
    if background and commands[0].status != 0:
        raise FormatError(f"a background block cannot expect an exit status at {where}")
    doc.commands.extend(commands)


def parse_annotations(info, where):
    """Return (background, timeout or None, norun reason or None) from a console info string.

    Unknown words are errors: a misspelt `backgroud` must not quietly run in the foreground.
    """
    try:
        words = shlex.split(info)[1:]
    except ValueError as e:
        raise FormatError(f"bad info string at {where}: {e}") from None
    background, timeout, norun = False, None, None
    for word in words:
        name, equals, value = word.partition("=")
        if word == "background":
            background = True
        elif name == "timeout" and equals:
            timeout = parse_seconds(value, where)
        elif name == "norun":
            if not value.strip():
                raise FormatError(f'norun needs a reason (norun="...") at {where}')
            norun = value
        else:
            raise FormatError(f"unknown annotation {word!r} at {where}")
    return background, timeout, norun


def parse_seconds(value, where):
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise FormatError(f"timeout must be a positive number of seconds at {where}")
    return seconds


def parse_console(path, first_line, body, timeout, background):
    """Split a console block into commands (`$ ` lines and their continuations) and outputs."""
    commands = []
    k = 0
    while k < len(body):
        if not body[k].startswith("$ "):
            if body[k].strip():
                raise FormatError(f"text before the first `$ ` command at {path}:{first_line + k}")
            k += 1
            continue
        line = first_line + k
        text, k = read_command(body, k, f"{path}:{line}")
        end = k
        while end < len(body) and not body[end].startswith("$ "):
            end += 1
        expected, status = parse_expected(body[k:end])
        commands.append(Command(path, line, text, expected, status, timeout, background))
        k = end
    return commands


def read_command(body, k, where):
    """Return (command text, index after it): lines are added while bash finds it incomplete.

    That lets multi-line quoted JSON, `\\` continuations and here-documents read naturally.
    A command bash rejects for another reason is an error of the page, found before running.
    """
    text = body[k][2:]
    while (verdict := check_syntax(text)) is MORE:
        k += 1
        if k == len(body):
            raise FormatError(f"incomplete command at {where} (the block ends inside it)")
        text += "\n" + body[k]
    if verdict:
        raise FormatError(f"bash syntax error in command at {where}: {verdict}")
    return text, k + 1


def check_syntax(text):
    """None for a complete command, MORE when the next line belongs to it, else bash's error."""
    last = text.rsplit("\n", 1)[-1]
    if (len(last) - len(last.rstrip("\\"))) % 2 == 1:
        return MORE
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-n", "-c", text], capture_output=True, text=True
    )
    if INCOMPLETE.search(result.stderr):
        return MORE
    if result.returncode != 0:
        return result.stderr.strip() or f"bash -n exited with status {result.returncode}"
    return None


def parse_expected(lines):
    """Return (expected output lines, expected exit status) from the lines after a command."""
    lines = normalize(lines)
    if lines and (match := EXIT_LINE.fullmatch(lines[-1])):
        return normalize(lines[:-1]), int(match[1])
    return lines, 0


def normalize(lines):
    """Strip trailing whitespace from each line and drop trailing empty lines."""
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# ---------------------------------------------------------------- matching


def line_pattern(line):
    """Compile one expected line: placeholders become patterns, everything else is literal."""
    parts, pos = [], 0
    for match in PLACEHOLDER.finditer(line):
        parts += [re.escape(line[pos : match.start()]), PLACEHOLDERS[match[0]]]
        pos = match.end()
    parts.append(re.escape(line[pos:]))
    return re.compile("".join(parts))


def matches(expected, actual):
    """Whether the actual lines match the expected ones, a `...` line matching any number
    of whole lines.

    Every way of matching is followed at once, as the set of positions reached in the
    actual lines, so a `...` never takes a line that a later expected line needs: what
    backtracking would find, without recursion and its depth limit on long outputs.
    """
    reached = {0}
    for line in expected:
        if not reached:
            return False
        if line == ANY_LINES:
            reached = set(range(min(reached), len(actual) + 1))
        else:
            pattern = line_pattern(line)
            reached = {j + 1 for j in reached if j < len(actual) and pattern.fullmatch(actual[j])}
    return len(actual) in reached


# ---------------------------------------------------------------- running


@dataclass
class Outcome:
    output: str
    status: int | None  # None when the command did not finish
    problem: str | None = None


class Shell:
    """One page's bash, kept for all its commands so that `cd`, `export` and functions carry.

    Each command is followed by a printf of a sentinel holding a random nonce and `$?`; the
    output before the sentinel is the command's (stdout and stderr merged). The sentinel
    starts with a newline of its own, which is removed, so output without a final newline
    is kept apart from it.
    """

    def __init__(self, workdir, env):
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,  # a timeout kills the command's children as well
        )
        self.marker = f"__DOCCHECK_STATUS_{secrets.token_hex(8)}"
        self.sentinel = re.compile(rb"\n" + self.marker.encode() + rb" (\d+)\n")
        self.pending = b""

    def run(self, text, timeout):
        script = f"{{\n{text}\n}} </dev/null 2>&1\nbuiltin printf '\\n{self.marker} %d\\n' $?\n"
        try:
            self.proc.stdin.write(script.encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return Outcome("", None, "the shell had already exited")
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while not (match := self.sentinel.search(self.pending)):
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return self.unfinished(f"timed out after {timeout:g} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return self.unfinished(f"the shell exited with status {self.proc.wait()}")
                self.pending += chunk
        output, self.pending = self.pending[: match.start()], self.pending[match.end() :]
        return Outcome(output.decode(errors="replace"), int(match[1]))

    def unfinished(self, problem):
        """What a command printed before it timed out or ended the shell."""
        output, self.pending = self.pending, b""
        return Outcome(output.decode(errors="replace"), None, problem)

    def kill(self):
        signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self):
        """End the shell and whatever it left running with `&`."""
        signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc.stdin.close()
        self.proc.stdout.close()


def signal_group(pgid, signum):
    """Send a signal to a process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


def group_alive(pgid):
    """Whether the group still has a live member.

    Zombies do not count: where PID 1 does not reap orphans (many containers) a dead
    server's zombie would otherwise look alive until SIGKILL, after a needless wait.
    """
    if not os.path.isdir("/proc/self"):
        return signal_group(pgid, 0)
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


@dataclass
class Background:
    """A background command: its own process group, its log, and a file for its exit status."""

    pgid: int
    log: str
    status_file: str

    def ended(self):
        """Why the command is no longer running, or None while it runs."""
        running = group_alive(self.pgid)  # first: a group found gone has written its status
        try:
            with open(self.status_file) as f:
                status = f.read().strip()
        except FileNotFoundError:
            status = ""
        if status:
            return f"exited with status {status}"
        return None if running else "was killed"

    def lines(self, complete_only):
        """The log's lines; while it runs, only finished lines, so no half line can match."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:  # the launched subshell has not opened it yet
            text = ""
        if complete_only:
            text = text[: text.rfind("\n") + 1]
        return normalize(text.split("\n"))


def start_background(shell, cmd, log):
    """Start the command from the page's shell (same cwd, variables and functions), in its
    own process group (`set -m`), with its output going to a log file. It runs in a subshell
    of its own, so that even an `exit` in it leaves its status in the status file."""
    status_file = log + ".status"
    launch = (
        f"set -m\n( (\n{cmd.text}\n) </dev/null; echo $? >{shlex.quote(status_file)} ) "
        f"</dev/null >{shlex.quote(log)} 2>&1 &\nset +m\ndisown $!\necho $!"
    )
    outcome = shell.run(launch, DEFAULT_TIMEOUT)
    if outcome.status != 0 or not outcome.output.strip().isdigit():
        return None, f"could not start it: {outcome.problem or outcome.output}"
    return Background(int(outcome.output), log, status_file), None


def wait_for_lines(bg, cmd):
    """Wait until the expected lines appear in the log; return a failure message or None."""
    pattern = [ANY_LINES, *cmd.expected, ANY_LINES]
    deadline = time.monotonic() + cmd.timeout
    while True:
        ended = bg.ended()  # before reading the log, so a last read sees all it printed
        if matches(pattern, bg.lines(complete_only=ended is None)):
            return None
        if ended:
            return f"it {ended} before printing the expected lines"
        if time.monotonic() > deadline:
            return f"the expected lines did not appear within {cmd.timeout:g} s"
        time.sleep(0.1)


def wait_until_gone(backgrounds, seconds):
    """Wait up to `seconds` for every background group to have no live member."""
    deadline = time.monotonic() + seconds
    while any(group_alive(bg.pgid) for bg in backgrounds) and time.monotonic() < deadline:
        time.sleep(0.02)


def stop_backgrounds(backgrounds):
    """SIGTERM every background group, SIGKILL whatever is left after KILL_GRACE seconds, and
    return once they are gone: a SIGKILL takes effect asynchronously, and a page's server must
    not outlive its run (the next page listens on the same port)."""
    for bg in backgrounds:
        signal_group(bg.pgid, signal.SIGTERM)
    wait_until_gone(backgrounds, KILL_GRACE)
    for bg in backgrounds:
        signal_group(bg.pgid, signal.SIGKILL)
    wait_until_gone(backgrounds, KILL_GRACE)


def report_failure(cmd, outcome, actual):
    print(f"doccheck: FAILED at {cmd.where}")
    print(f"$ {cmd.text}")
    if outcome.problem:
        print(f"doccheck: {outcome.problem}")
    actual_status = "none" if outcome.status is None else outcome.status
    print(f"exit status: expected {cmd.status}, actual {actual_status}")
    if matches(cmd.expected, actual):
        print("(output as expected)")
    else:
        diff = difflib.unified_diff(cmd.expected, actual, "expected", "actual", lineterm="")
        # An empty diff: the output is the expected text itself, placeholders and all.
        print("\n".join(diff) or "(the output shows the placeholders literally)")


def run_command(shell, cmd):
    """Run a foreground command; True when its output and exit status are as shown."""
    outcome = shell.run(cmd.text, cmd.timeout)
    actual = normalize(outcome.output.split("\n"))
    if outcome.status == cmd.status and matches(cmd.expected, actual):
        return True
    report_failure(cmd, outcome, actual)
    return False


def run_background(shell, cmd, logdir, backgrounds):
    """Start a background command and wait for its expected lines; True when they appear."""
    log = os.path.join(logdir, f"background-{len(backgrounds)}.log")
    bg, problem = start_background(shell, cmd, log)
    if bg:
        backgrounds.append(bg)
        problem = wait_for_lines(bg, cmd)
    if not problem:
        return True
    print(f"doccheck: FAILED at {cmd.where} (background)")
    print(f"$ {cmd.text}")
    print(f"doccheck: {problem}")
    print("expected lines:", *cmd.expected, sep="\n")
    if bg:
        print(f"last {LOG_TAIL} lines of its output:", *bg.lines(False)[-LOG_TAIL:], sep="\n")
    return False


@dataclass
class FileResult:
    run: int = 0
    passed: int = 0
    failed: Command | None = None


def run_doc(doc, shell, logdir, backgrounds):
    """Run a page's commands in order, stopping at the first failure (later ones depend on it)."""
    result = FileResult()
    for cmd in doc.commands:
        first = cmd.text.split("\n", 1)[0]
        if len(first) > PROGRESS_WIDTH:
            first = first[: PROGRESS_WIDTH - 3] + "..."
        print(f"doccheck: {cmd.where} $ {first}", file=sys.stderr, flush=True)
        result.run += 1
        if cmd.background:
            ok = run_background(shell, cmd, logdir, backgrounds)
        else:
            ok = run_command(shell, cmd)
        if not ok:
            result.failed = cmd
            break
        result.passed += 1
    sys.stdout.flush()
    return result


def run_all(docs, workdir, env, keep_going):
    """Run the pages in order, each in its own shell; background commands outlive their page
    and are all stopped at the end, whatever happened."""
    results, shells, backgrounds = [], [], []
    with tempfile.TemporaryDirectory(prefix="doccheck-") as logdir:
        try:
            for doc in docs:
                shells.append(Shell(workdir, env))
                results.append(run_doc(doc, shells[-1], logdir, backgrounds))
                if results[-1].failed and not keep_going:
                    break
        finally:
            stop_backgrounds(backgrounds)  # while their parent shells still live to reap them
            for shell in shells:
                shell.close()
    print_summary(docs, results)
    return 1 if any(r.failed for r in results) else 0


def print_summary(docs, results):
    """Per page what ran and what was skipped, then the totals on a line of their own."""
    print("doccheck: summary")
    for i, doc in enumerate(docs):
        if i < len(results):
            result = results[i]
            line = f"  {doc.path}: {result.run} commands run, {result.passed} passed"
            if result.failed:
                not_run = len(doc.commands) - result.run
                line += f"; failed at {result.failed.where}, {not_run} not run"
        else:
            line = f"  {doc.path}: not run (an earlier page failed)"
        print(line)
        for skipped in doc.skipped:
            print(f"  skipped {skipped.where}: {skipped.reason}")
    passed = sum(r.passed for r in results)
    failed = sum(1 for r in results if r.failed)
    print(f"doccheck: {passed} passed, {failed} failed")


def list_commands(docs):
    """Print what a run would do, in page order, without running anything."""
    for doc in docs:
        items = [(s.line, f"norun: {s.reason}") for s in doc.skipped]
        for c in doc.commands:
            items.append((c.line, ("(background) " if c.background else "") + f"$ {c.text}"))
        for line, what in sorted(items, key=lambda item: item[0]):
            print(f"{doc.path}:{line} {what}")


# ---------------------------------------------------------------- command line


def env_pair(text):
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE", help="Markdown pages, run in this order")
    add("--workdir", default=".", help="where the shells start (default: the current directory)")
    add("--env", type=env_pair, action="append", default=[], metavar="NAME=VALUE",
        help="add a variable to the shells' environment (repeatable)")
    add("--keep-going", action="store_true", help="after a failing page, go on with the next")
    add("--list", action="store_true", help="print the commands without running anything")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.workdir):
        parser.error(f"--workdir {args.workdir}: not a directory")
    return args


def terminate(signum, frame):
    """Turn SIGTERM into an exception, so the background processes are still stopped."""
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    docs, errors = [], []
    for path in args.files:
        doc, doc_errors = parse_file(path)
        docs.append(doc)
        errors += doc_errors
    for error in errors:
        print(f"doccheck: {error}", file=sys.stderr)
    if errors:
        return 2
    if args.list:
        list_commands(docs)
        return 0
    signal.signal(signal.SIGTERM, terminate)
    try:
        return run_all(docs, args.workdir, {**os.environ, **dict(args.env)}, args.keep_going)
    except KeyboardInterrupt:
        print("doccheck: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
