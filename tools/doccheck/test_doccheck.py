"""Tests for doccheck: each writes Markdown pages to a temporary directory and runs them
through the real command line, with real bash, checking the exit status and the report."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import doccheck  # noqa: E402

SCRIPT = os.path.join(HERE, "doccheck.py")
FENCE = "```"


def alive(pid):
    """Whether a process runs; a zombie (PID 1 may never reap it here) counts as dead."""
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class DoccheckCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="doccheck-test-")
        self.addCleanup(shutil.rmtree, self.dir)

    def page(self, name, text):
        """Write a page; `FENCE` in the text stands for three backticks."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text).replace("FENCE", FENCE))
        return name

    def run_doccheck(self, *args, timeout=60):
        """Run the command line in the test directory; return (status, stdout, stderr)."""
        result = subprocess.run([sys.executable, SCRIPT, *args], cwd=self.dir,
                                capture_output=True, text=True, timeout=timeout)
        return result.returncode, result.stdout, result.stderr

    def assertTotals(self, stdout, passed, failed):
        last_line = stdout.rstrip("\n").split("\n")[-1]
        self.assertEqual(last_line, f"doccheck: {passed} passed, {failed} failed")

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()


class PassingPages(DoccheckCase):
    def test_output_status_and_state_carry_between_blocks(self):
        page = self.page("a.md", """\
            Text, then a block:

            FENCEconsole
            $ echo hello
            hello
            $ export GREETING=hi; cd sub; greet() { echo "$GREETING from $(basename "$PWD")"; }
            $ false
            [exit: 1]
            FENCE

            FENCEconsole
            $ greet
            hi from sub
            $ echo "to stderr" >&2; exit_with() { return "$1"; }; exit_with 3
            to stderr

            [exit: 3]
            FENCE
            """)
        os.mkdir(os.path.join(self.dir, "sub"))
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertIn("a.md: 5 commands run, 5 passed", out)
        self.assertTotals(out, 5, 0)
        self.assertIn("doccheck: a.md:4 $ echo hello", err)

    def test_multiline_commands(self):
        page = self.page("multi.md", """\
            FENCEconsole
            $ python3 -c 'import json, sys; print(json.load(sys.stdin)["a"])' <<< '{
              "a": "x",
              "b": 2
            }'
            x
            $ printf '%s\n' 'first
            $ second' | wc -l
            2
            $ echo one \\
                two
            one two
            $ cat <<EOF | sed 's/^[$]/>/'
            inside
            $ also inside
            EOF
            inside
            > also inside
            $ if true; then
                echo yes
              fi
            yes
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertTotals(out, 5, 0)

    def test_output_without_final_newline_is_kept_apart_from_the_next(self):
        page = self.page("nl.md", """\
            FENCEconsole
            $ printf 'no newline'
            no newline
            $ printf 'two\\n\\n\\n'
            two
            $ printf ''
            $ printf 'trailing   \\n'
            trailing
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertTotals(out, 4, 0)

    def test_commands_do_not_read_the_runner_stdin(self):
        page = self.page("stdin.md", """\
            FENCEconsole
            $ cat; echo "status $?"
            status 0
            $ echo after
            after
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)

    def test_placeholders_end_to_end(self):
        page = self.page("ph.md", """\
            FENCEconsole
            $ echo "created 2026-11-30T10:16:21.5+01:00 id=9f3A count=-12 ratio=1.5e-3 key=bh_x/y+z"
            created [time] id=[hex] count=[int] ratio=[num] key=[secret]
            $ seq 1 20
            1
            ...
            10
            ...
            20
            $ echo "a.b*c (literal)"
            a.b*c [..]
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)

    def test_other_fences_are_ignored_and_fences_nest(self):
        page = self.page("fences.md", """\
            FENCErust
            fn main() { println!("$ not run"); }
            FENCE

            ````markdown
            FENCEsh
            rm -rf /not/run
            FENCE
            ````

            ~~~console
            $ printf '%s\n' 'FENCE'
            FENCE
            ~~~

            1. In a list:

               FENCEconsole
               $ echo indented
               indented
               FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertTotals(out, 2, 0)

    def test_workdir_and_env(self):
        os.mkdir(os.path.join(self.dir, "w"))
        page = self.page("env.md", """\
            FENCEconsole
            $ basename "$PWD"; echo "$ANSWER"
            w
            forty two
            FENCE
            """)
        status, out, err = self.run_doccheck("--workdir", "w", "--env", "ANSWER=forty two", page)
        self.assertEqual(status, 0, out + err)

    def test_norun_blocks_are_listed_not_run(self):
        page = self.page("norun.md", """\
            FENCEconsole norun="needs a GPU, which CI has not"
            $ touch ran; exit 9
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertIn("skipped norun.md:1: needs a GPU, which CI has not", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "ran")))
        self.assertTotals(out, 0, 0)

    def test_list_runs_nothing(self):
        page = self.page("list.md", """\
            FENCEconsole
            $ touch ran
            $ echo a \\
              b
            FENCE

            FENCEconsole background
            $ touch ran-too
            FENCE
            """)
        status, out, err = self.run_doccheck("--list", page)
        self.assertEqual(status, 0, out + err)
        self.assertEqual(out, "list.md:2 $ touch ran\nlist.md:3 $ echo a \\\n  b\n"
                              "list.md:8 (background) $ touch ran-too\n")
        self.assertEqual(os.listdir(self.dir), ["list.md"])


class FailingPages(DoccheckCase):
    def test_wrong_output_shows_a_diff_and_stops_the_page(self):
        page = self.page("wrong.md", """\
            FENCEconsole
            $ echo ok
            ok
            $ printf 'alpha\\nbeta\\n'
            alpha
            gamma
            $ touch not-reached
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("doccheck: FAILED at wrong.md:4\n$ printf 'alpha\\nbeta\\n'\n", out)
        self.assertIn("-gamma\n+beta\n", out)
        self.assertIn("wrong.md: 2 commands run, 1 passed; failed at wrong.md:4, 1 not run", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "not-reached")))
        self.assertTotals(out, 1, 1)

    def test_unexpected_output_when_none_is_shown(self):
        page = self.page("quiet.md", "FENCEconsole\n$ echo chatty\nFENCE\n")
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("+chatty", out)

    def test_wrong_exit_status(self):
        page = self.page("status.md", """\
            FENCEconsole
            $ echo out; exit_with() { return 4; }; exit_with
            out
            $ true
            [exit: 1]
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("FAILED at status.md:2", out)
        self.assertIn("exit status: expected 0, actual 4\n(output as expected)", out)

    def test_expected_failure_that_succeeds(self):
        page = self.page("status.md", "FENCEconsole\n$ true\n[exit: 1]\nFENCE\n")
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("exit status: expected 1, actual 0", out)

    def test_timeout_kills_the_command_and_its_children(self):
        page = self.page("slow.md", """\
            FENCEconsole timeout=1
            $ sleep 30 & echo $! > child.pid; echo started; wait
            started
            FENCE
            """)
        start = time.monotonic()
        status, out, err = self.run_doccheck(page)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(status, 1)
        self.assertIn("doccheck: timed out after 1 s", out)
        self.assertIn("exit status: expected 0, actual none", out)
        self.assertFalse(alive(int(self.read("child.pid"))))

    def test_a_shell_that_exits_is_a_failure(self):
        page = self.page("exit.md", "FENCEconsole\n$ echo bye; exit 0\nbye\nFENCE\n")
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("the shell exited with status 0", out)

    def test_stop_after_failing_page_unless_keep_going(self):
        bad = self.page("bad.md", "FENCEconsole\n$ echo no\nyes\nFENCE\n")
        good = self.page("good.md", "FENCEconsole\n$ touch reached\nFENCE\n")
        status, out, err = self.run_doccheck(bad, good)
        self.assertEqual(status, 1)
        self.assertIn("good.md: not run (an earlier page failed)", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "reached")))
        status, out, err = self.run_doccheck("--keep-going", bad, good)
        self.assertEqual(status, 1)
        self.assertIn("good.md: 1 commands run, 1 passed", out)
        self.assertTotals(out, 1, 1)


class BackgroundCommands(DoccheckCase):
    def test_server_serves_later_pages_and_is_stopped_at_the_end(self):
        server = self.page("server.md", """\
            FENCEconsole
            $ mkdir -p run && cd run && export PORT_FILE=port
            FENCE

            FENCEconsole background timeout=20
            $ trap 'echo TERM > got-term; exit' TERM; sleep 60 & echo $! > child.pid; \
                echo $BASHPID > server.pid; sleep 0.3; echo "listening on 7600" | tee $PORT_FILE; wait
            listening on [int]
            FENCE
            """)
        client = self.page("client.md", """\
            FENCEconsole
            $ cat run/port
            listening on 7600
            FENCE
            """)
        start = time.monotonic()
        status, out, err = self.run_doccheck(server, client)
        self.assertLess(time.monotonic() - start, doccheck.KILL_GRACE)  # it obeyed SIGTERM
        self.assertEqual(status, 0, out + err)
        self.assertTotals(out, 3, 0)
        self.assertEqual(self.read("run/got-term"), "TERM\n")
        for pid_file in ("run/server.pid", "run/child.pid"):
            self.assertFalse(alive(int(self.read(pid_file))), pid_file)

    def test_stopping_does_not_wait_for_zombies(self):
        # The subshell around sh dies at once, leaving sh to exit 0.3 s later as an orphan.
        # Where PID 1 never reaps orphans (a container without an init), its zombie stays in
        # the group and must not count as alive, or stopping takes the whole grace period.
        # Where PID 1 reaps, even late, this passes either way.
        page = self.page("orphan.md", """\
            FENCEconsole background
            $ sh -c 'trap "sleep 0.3; exit" TERM; echo up; while :; do sleep 0.05; done'
            up
            FENCE
            """)
        start = time.monotonic()
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 0, out + err)
        self.assertLess(time.monotonic() - start, doccheck.KILL_GRACE)

    def test_expected_line_never_printed(self):
        page = self.page("never.md", """\
            FENCEconsole background timeout=1
            $ echo $BASHPID > bg.pid; echo "starting"; sleep 30
            ready
            FENCE
            """)
        start = time.monotonic()
        status, out, err = self.run_doccheck(page)
        self.assertLess(time.monotonic() - start, 15)
        self.assertEqual(status, 1)
        self.assertIn("FAILED at never.md:2 (background)", out)
        self.assertIn("the expected lines did not appear within 1 s", out)
        self.assertIn("lines of its output:\nstarting\n", out)
        self.assertFalse(alive(int(self.read("bg.pid"))))

    def test_process_that_exits_first(self):
        page = self.page("exits.md", """\
            FENCEconsole background
            $ echo "oops"; exit 3
            ready
            FENCE
            """)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 1)
        self.assertIn("it exited with status 3 before printing the expected lines", out)

    def test_sigkill_after_the_grace_period(self):
        page = self.page("stubborn.md", """\
            FENCEconsole background
            $ trap '' TERM; echo $BASHPID > bg.pid; echo up; while :; do sleep 0.1; done
            up
            FENCE
            """)
        stdout, stderr = io.StringIO(), io.StringIO()
        with mock.patch.object(doccheck, "KILL_GRACE", 0.5), \
                contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = doccheck.main(["--workdir", self.dir, os.path.join(self.dir, page)])
        self.assertEqual(status, 0, stdout.getvalue())
        self.assertFalse(alive(int(self.read("bg.pid"))))


class FormatErrors(DoccheckCase):
    def assertFormatError(self, text, message):
        page = self.page("bad.md", text)
        status, out, err = self.run_doccheck(page)
        self.assertEqual(status, 2, out + err)
        self.assertIn(message, err)
        self.assertEqual(out, "")

    def test_shell_blocks_must_be_console_blocks(self):
        for language in ("sh", "bash", "shell", "zsh"):
            with self.subTest(language):
                self.assertFormatError(f"Intro\n\nFENCE{language}\necho hi\nFENCE\n",
                                       "command block not in console form at bad.md:3")

    def test_norun_needs_a_reason(self):
        self.assertFormatError("FENCEconsole norun\n$ x\nFENCE\n", "norun needs a reason")
        self.assertFormatError('FENCEconsole norun=""\n$ x\nFENCE\n', "norun needs a reason")

    def test_bad_annotations(self):
        self.assertFormatError("FENCEconsole backgroud\n$ x\nFENCE\n",
                               "unknown annotation 'backgroud'")
        self.assertFormatError("FENCEconsole timeout=soon\n$ x\nFENCE\n",
                               "timeout must be a positive")

    def test_incomplete_and_invalid_commands(self):
        self.assertFormatError("FENCEconsole\n$ echo 'open\nFENCE\n",
                               "incomplete command at bad.md:2")
        self.assertFormatError("FENCEconsole\n$ echo )\nFENCE\n",
                               "bash syntax error in command at bad.md:2")

    def test_background_blocks(self):
        self.assertFormatError("FENCEconsole background\n$ a\n$ b\nFENCE\n", "exactly one command")
        self.assertFormatError("FENCEconsole background\n$ a\n[exit: 1]\nFENCE\n",
                               "cannot expect an exit status")

    def test_output_before_the_first_command(self):
        self.assertFormatError("FENCEconsole\nhello\n$ echo hello\nFENCE\n",
                               "text before the first `$ ` command")

    def test_unclosed_fence(self):
        self.assertFormatError("FENCEconsole\n$ echo hi\n", "unclosed fence at bad.md:1")

    def test_missing_file(self):
        status, out, err = self.run_doccheck("missing.md")
        self.assertEqual(status, 2)
        self.assertIn("cannot read missing.md", err)

    def test_nothing_runs_when_any_page_is_malformed(self):
        good = self.page("good.md", "FENCEconsole\n$ touch ran\nFENCE\n")
        bad = self.page("bad.md", "FENCEsh\ntrue\nFENCE\n")
        status, out, err = self.run_doccheck(good, bad)
        self.assertEqual(status, 2)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "ran")))


class ShellOutput(unittest.TestCase):
    """The sentinel protocol, below the normalization that would hide a stray newline."""

    def test_output_is_exactly_what_the_command_printed(self):
        shell = doccheck.Shell(".", dict(os.environ))
        self.addCleanup(shell.close)
        for command, output, status in [
            ("printf 'no newline'", "no newline", 0),
            ("echo line", "line\n", 0),
            ("printf 'a\\n\\n'", "a\n\n", 0),
            ("echo err >&2; false", "err\n", 1),
            ("true", "", 0),
        ]:
            with self.subTest(command):
                outcome = shell.run(command, 10)
                self.assertEqual((outcome.output, outcome.status, outcome.problem), (output, status, None))


class Matching(unittest.TestCase):
    def test_placeholders(self):
        cases = [
            ("[..]", "", True),
            ("a [..] z", "a anything at all z", True),
            ("[int] items", "-42 items", True),
            ("[int] items", "4.2 items", False),
            ("[num]", "3.25e-4", True),
            ("[num]", "-.5", True),
            ("[num]", "1e", False),
            ("[time]", "2026-11-30T10:16:21Z", True),
            ("[time]", "2026-11-30T10:16:21.123456+05:30", True),
            ("[time]", "2026-11-30 10:16:21", False),
            ("[hex]", "DEADbeef01", True),
            ("[hex]", "xyz", False),
            ("token [secret]", "token bh_a/b+c=", True),
            ("token [secret]", "token two words", False),
            ("1+1 (x)", "1+1 (x)", True),
            ("a.c", "abc", False),
        ]
        for expected, actual, result in cases:
            with self.subTest(expected=expected, actual=actual):
                self.assertEqual(doccheck.matches([expected], [actual]), result)

    def test_ellipsis_lines_backtrack(self):
        match = doccheck.matches
        self.assertTrue(match(["...", "end"], ["end"]))
        self.assertTrue(match(["a", "...", "x", "z"], ["a", "x", "b", "x", "z"]))
        self.assertTrue(match(["...", "[int]", "..."], ["a", "7", "b"]))
        self.assertFalse(match(["a", "...", "z"], ["a", "b"]))
        self.assertFalse(match(["a"], ["a", "b"]))
        self.assertTrue(match([], []))


if __name__ == "__main__":
    unittest.main()
