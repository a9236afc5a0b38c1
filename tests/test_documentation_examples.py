"""Every Python code block in README.md and docs/*.rst runs, so the documentation cannot rot.

The blocks are found in the text itself: ```` ```python ```` fences in the README; in the docs,
``.. code-block::`` (and ``code``, ``sourcecode``) directives, ``::`` literal blocks and ``>>>``
doctest blocks, a block without a language taking ``highlight_language`` from docs/conf.py, as
Sphinx does. Each Python block is a test case of its own, named by file and line, run in a fresh
temporary working directory with its line numbers kept, so a traceback points into the page.

What a run checks besides "it does not raise":

* a ``print(...)`` whose comment states a value (``# b'hello, ring\\n'``, ``# 1: queued``)
  must print exactly that;
* a statement whose comment starts with an exception's name (``# ValueError: ...``, ``# will
  fail with ValueError``) must raise it, and the rest of the block runs on;
* a block the text says prints a listing (``It prints::``) must print exactly that listing.

Pages of the docs use the package's names unqualified (``.. currentmodule:: century_ring``), so
their blocks run with every name in ``century_ring.__all__`` already imported; the README's
block is run with nothing. A block that is a fragment of a program (it uses the program's
``ring`` or ``fd``) gets those from ``SETUPS``, which says why, and may check what the block did
afterwards. A block that cannot run is in ``EXCLUDED`` with the reason. Every entry of these
tables must match exactly one block, so none can go stale, and a block in no table simply runs:
a new example is tested the day it is written. A block needing a kernel feature this machine
lacks is skipped with the library's own ``NotImplementedError`` message.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import doctest
import io
import json
import re
import signal
import socket
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import century_ring
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: Languages that Pygments (and so Sphinx and GitHub) highlights as Python; Sphinx's "default" is
#: Python 3 with a quiet fallback.
PYTHON_LANGUAGES = {"python", "python3", "py", "py3", "pycon", "default"}

#: Directives whose content is a literal block, with the language of those that imply one.
CODE_DIRECTIVES = {"code-block": "", "code": "", "sourcecode": "", "doctest": "pycon"}


# -- Finding the blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One literal block of a page."""

    path: str  # relative to the repository, e.g. "docs/concepts.rst"
    line: int  # the line of its first line of code, counted from 1
    language: str  # as the page's renderer sees it: "python3" for a plain "::" block here
    code: str  # without the page's indentation

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language.lower() in PYTHON_LANGUAGES

    @property
    def is_doctest(self) -> bool:
        return self.language == "pycon" or self.code.lstrip().startswith(">>>")


def highlight_language() -> str:
    """docs/conf.py's ``highlight_language``, read without running conf.py."""
    for node in ast.parse((DOCS / "conf.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "highlight_language" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    return "default"  # Sphinx's own default


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indented(lines: list[str], start: int, indent: int) -> tuple[int, int, str]:
    """The block of lines from ``start`` indented deeper than ``indent``, blank lines included.

    Returns the index of its first non-blank line, the index just past it, and its dedented
    text; the text is empty when no such line follows.
    """
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    first = start
    while first < end and not lines[first].strip():
        first += 1
    last = end
    while last > first and not lines[last - 1].strip():
        last -= 1
    return first, end, textwrap.dedent("\n".join(lines[first:last]))


_DIRECTIVE = re.compile(r"^\s*\.\.\s+(?P<name>[\w:-]+)::(?:\s+(?P<arg>.*?))?\s*$")
#: ".." starting a comment: not a directive, a target (_), a footnote ([) or a substitution (|).
_COMMENT = re.compile(r"^\s*\.\.(?:\s+[^\s_\[|]|\s*$)")


def rst_blocks(path: Path) -> list[Block]:
    """Every literal block of a reStructuredText page, as docutils and Sphinx find them."""
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    language = highlight_language()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = _indent(line)
        directive = _DIRECTIVE.match(line)
        if directive and directive["name"] == "highlight":
            language = (directive["arg"] or "").split()[0]
        elif directive and directive["name"] in CODE_DIRECTIVES:
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith(":") and _indent(lines[j]):
                j += 1  # the directive's options
            first, end, text = _indented(lines, j, indent)
            argument = (directive["arg"] or "").split()
            lang = argument[0] if argument else CODE_DIRECTIVES[directive["name"]] or language
            if text:
                blocks.append(Block(rel, first + 1, lang, text))
            i = max(end, i + 1)
            continue
        elif _COMMENT.match(line) and not directive:
            i = max(_indented(lines, i + 1, indent)[1], i + 1)  # not rendered at all
            continue
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            first, end, text = _indented(lines, i + 1, indent)
            if text and first > i + 1:  # a literal block follows a blank line
                blocks.append(Block(rel, first + 1, language, text))
                i = end
                continue
        elif line.lstrip().startswith(">>>") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and lines[end].strip():
                end += 1
            blocks.append(Block(rel, i + 1, "pycon", textwrap.dedent("\n".join(lines[i:end]))))
            i = end
            continue
        i += 1
    return blocks


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def markdown_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown page; its language is the info string's first
    word ("" for none)."""
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening["fence"]
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        info = opening["info"].strip().split()
        code = textwrap.dedent("\n".join(lines[i + 1 : end]))
        blocks.append(Block(rel, i + 2, info[0] if info else "", code))
        i = end + 1
    return blocks


def rst_pages() -> list[Path]:
    return sorted(DOCS.glob("*.rst"))


def all_blocks() -> list[Block]:
    """Every code block of the README and of every page of the docs, in page order."""
    blocks = markdown_blocks(README)
    for page in rst_pages():
        blocks += rst_blocks(page)
    return blocks


#: The README's Python blocks and every docs block Sphinx highlights as Python.
PYTHON_BLOCKS = [b for b in all_blocks() if b.is_python]


# -- What the text says about blocks that cannot run on their own ---------------------------

#: A block is named by its file and a snippet of its code that no other block of that file has.
Key = tuple[str, str]


@dataclass(frozen=True)
class Setup:
    """What a block needs from the program around it, and what to check after it has run."""

    why: str
    #: Files the block expects in the current directory, by name.
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: Code run before the block, in a namespace of its own ...
    before: str = ""
    #: ... of which only these names are handed to the block.
    gives: tuple[str, ...] = ()
    #: Code run after the block, seeing both the block's names and the setup's.
    after: str = ""


#: Blocks that are not run, and why.
EXCLUDED: dict[Key, str] = {
    ("docs/aio.rst", "multishot=True) as connections"): (
        "a fragment of a server's task (top-level await; its listener, task group and handler "
        "are the program's); tests/test_aio_ring.py accepts connections this way"
    ),
    ("docs/aio.rst", "move_on_after(1.0)"): (
        "a fragment of a task (top-level await; its socket and process() are the program's); "
        "tests/test_aio_cancellation.py races exactly this: receives cancelled as data arrives"
    ),
    ("docs/sync-api.rst", "ring.prep_openat(...)"): (
        "'...' stands for prep_openat's arguments: run literally, Python's own argument check "
        "raises TypeError (missing 'path' and 'open_mode') before the ring can say that it is "
        "closed. The user's page is kept as written; "
        "test_the_closed_ring_example_with_its_arguments_filled_in checks what the block says"
    ),
}

#: Output listings (a block the text says another block prints), and a snippet of that block.
OUTPUT_LISTINGS: dict[Key, str] = {
    ("docs/introduction.rst", "wrote 21 bytes"): "greeting.txt",
}

#: Content for files that examples read.
DATA = bytes(range(256)) * 256  # 64 KiB
#: Eight 128 KiB blocks, none equal to another.
BLOCKS_DATA = (bytes(range(251)) * 4200)[: 8 * 128 * 1024]

SETUPS: dict[Key, Setup] = {
    ("README.md", "current_ring()"): Setup(
        why="the async example reads the demo.txt the first example made",
        files={"demo.txt": b"hello, ring\n"},
    ),
    ("docs/aio.rst", '"data.bin"'): Setup(
        why="the example reads the first 4 KiB of data.bin in the current directory",
        files={"data.bin": DATA},
    ),
    ("README.md", "make_io_ring() as ring"): Setup(
        why="the text says the example creates demo.txt in the current directory",
        after="""
from pathlib import Path
assert Path("demo.txt").read_bytes() == b"hello, ring\\n"
""",
    ),
    ("docs/concepts.rst", "while waiting:"): Setup(
        why="the reaping loop of a program: its ring, and 'waiting' mapping the user_data of "
        "each operation in flight to what resumes it",
        before="""
ring = make_io_ring()
resumed = []
waiting = {ring.prep_nop(): resumed.append, ring.prep_nop(): resumed.append}
expected = sorted(waiting)
""",
        gives=("ring", "waiting"),
        after="""
assert sorted(cqe.user_data for cqe in resumed) == expected
assert all(cqe.result == 0 for cqe in resumed)
ring.close()
""",
    ),
    ("docs/concepts.rst", "except FileNotFoundError"): Setup(
        why="'cqe' is a completion the program reaped: here, an open of a missing file",
        before="""
import errno
with make_io_ring() as ring:
    ring.prep_openat(AT_FDCWD, "missing.txt", FileOpenMode.READ_ONLY)
    ring.submit_and_wait(1)
    (cqe,) = ring.get_completion_entries()
assert cqe.result == -errno.ENOENT, cqe
""",
        gives=("cqe",),
    ),
    ("docs/concepts.rst", "all or nothing"): Setup(
        why="the text: 'this writes a file and closes it', the program's ring and descriptor",
        before="""
import os
ring = make_io_ring()
fd = os.open("chained.txt", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
""",
        gives=("ring", "fd"),
        after="""
from pathlib import Path
results = {cqe.user_data: cqe.result for cqe in ring.get_completion_entries()}
ring.close()
assert results == {write_id: len(b"all or nothing\\n"), close_id: 0}, results
assert Path("chained.txt").read_bytes() == b"all or nothing\\n"
""",
    ),
    ("docs/handles.rst", "FdHandle.from_completion_event"): Setup(
        why="the example opens data.txt in the current directory",
        files={"data.txt": b"some data\n"},
    ),
    ("docs/registered.rst", "register_files([fd, -1, -1])"): Setup(
        why="the example opens data.bin in the current directory",
        files={"data.bin": DATA},
    ),
    ("docs/registered.rst", "register_files_sparse(1024)"): Setup(
        why="a server's ring and its listening socket; afterwards a client connects, and the "
        "completion's result must be a slot, as the block's comment says",
        before="""
import socket
ring = make_io_ring()
listener = socket.create_server(("127.0.0.1", 0))
""",
        gives=("ring", "listener"),
        after="""
client = socket.create_connection(listener.getsockname())
ring.submit_and_wait_with_timeout(10)
(accepted,) = ring.get_completion_entries()
raise_for_cqe(accepted)
assert 0 <= accepted.result < 1024 and accepted.more, accepted
ring.close()
client.close()
listener.close()
""",
    ),
    ("docs/registered.rst", "ring.register_buffers(buffers)"): Setup(
        why="the program's ring and a file of 64 KiB; afterwards the data must be where the "
        "block's comment says",
        files={"data.bin": DATA},
        before="""
import os
ring = make_io_ring()
fd = os.open("data.bin", os.O_RDONLY | os.O_CLOEXEC)
""",
        gives=("ring", "fd"),
        after="""
from pathlib import Path
ring.submit_and_wait(1)
(cqe,) = ring.get_completion_entries()
raise_for_cqe(cqe)
assert cqe.result == 65536 and cqe.buffer is None, cqe
assert buffers[3][4096:4096 + cqe.result] == Path("data.bin").read_bytes()[: cqe.result]
ring.close()
os.close(fd)
""",
    ),
    ("docs/zero-copy.rst", "ring.prep_read_into(fd, target"): Setup(
        why="the program's ring and a file of eight 128 KiB blocks; afterwards each buffer "
        "must hold its block",
        files={"blocks.bin": BLOCKS_DATA},
        before="""
import os
ring = make_io_ring()
fd = os.open("blocks.bin", os.O_RDONLY | os.O_CLOEXEC)
""",
        gives=("ring", "fd"),
        after="""
from pathlib import Path
blob = Path("blocks.bin").read_bytes()
size = 128 * 1024
blocks = [blob[i : i + size] for i in range(0, len(blob), size)]
assert [bytes(target) for target in buffers.values()] == blocks
assert data == blob[-size:]
ring.close()
os.close(fd)
""",
    ),
    ("docs/buffer-rings.rst", "def receive_all(sock, handle)"): Setup(
        why="the block defines the receive loop; afterwards it receives 6 MiB, more than the "
        "4 MiB of buffers, so buffers must go back to the ring, from a peer that then closes",
        after="""
import socket
import threading
ours, peer = socket.socketpair()
payload = bytes(range(253)) * (6 * 1024 * 1024 // 253)
def send():
    with peer:
        peer.sendall(payload)
sender = threading.Thread(target=send)
sender.start()
watchdog = threading.Timer(20, ours.shutdown, (socket.SHUT_RDWR,))  # a stuck loop ends
watchdog.start()
received = []
try:
    receive_all(ours, lambda view: received.append(bytes(view)))
finally:
    watchdog.cancel()
    sender.join()
    ours.close()
assert b"".join(received) == payload
""",
    ),
}


def find(key: Key) -> list[Block]:
    """The Python blocks that ``key`` names."""
    path, snippet = key
    return [b for b in PYTHON_BLOCKS if b.path == path and snippet in b.code]


def lookup(table: Mapping[Key, Any], block: Block) -> Any:
    for key, value in table.items():
        if block in find(key):
            return value
    return None


RUN = [
    b for b in PYTHON_BLOCKS if lookup(EXCLUDED, b) is None and lookup(OUTPUT_LISTINGS, b) is None
]


# -- Running a block ------------------------------------------------------------------------

_STATES_EXCEPTION = re.compile(
    r"^#\s*(?:(?:will\s+)?(?:fails?|raises?)\s+(?:with\s+)?)?(?P<name>[A-Z]\w*(?:Error|Exception))\b"
)


def comments(code: str) -> dict[int, str]:
    """The comment on each line of ``code``, by line number counted from 1."""
    found: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


def stated_output(comment: str) -> str | None:
    """What a ``print`` line's comment says it prints: the whole comment, or what comes before
    its first colon, if that is a Python literal (``# b'hello, ring\\n'``, ``# 1: queued``);
    None for a comment that explains rather than states."""
    text = comment[1:].strip()
    for candidate in (text, text.split(":", 1)[0].strip()):
        try:
            ast.literal_eval(candidate)
        except (ValueError, SyntaxError):
            continue
        return candidate
    return None


def expectations(tree: ast.Module, code: str) -> tuple[dict[int, str], dict[int, str]]:
    """The lines whose ``print`` states its output, and those whose comment names the
    exception they raise; block-relative line numbers."""
    notes = comments(code)
    prints: dict[int, str] = {}
    raises: dict[int, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or node.end_lineno is None:
            continue
        note = notes.get(node.end_lineno)
        if note is None:
            continue
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "print"
        ):
            said = stated_output(note)
            if said is not None:
                prints[node.end_lineno] = said
        exception = _STATES_EXCEPTION.match(note)
        if exception and node.lineno == node.end_lineno and not hasattr(node, "body"):
            raises[node.lineno] = exception["name"]
    return prints, raises


RAISED = "__documentation_example_raised__"
ERROR = "__documentation_example_error__"


class _ExpectRaises(ast.NodeTransformer):
    """Wraps each statement that should raise in ``try``/``except``, so that the block goes on
    and a statement that does not raise fails the test."""

    def __init__(self, raises: Mapping[int, str]) -> None:
        self.raises = raises

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        if isinstance(node, ast.stmt) and node.lineno in self.raises:
            name = self.raises[node.lineno]
            wrapper = ast.parse(
                f"try:\n    pass\nexcept {name} as {ERROR}:\n"
                f"    {RAISED}.append(({node.lineno}, {ERROR}))\n"
                f"else:\n    raise AssertionError('this line does not raise {name}, "
                "which its comment says it does')\n"
            ).body[0]
            for part in ast.walk(wrapper):
                if isinstance(part, (ast.stmt, ast.expr, ast.excepthandler)):
                    part.lineno = part.end_lineno = node.lineno
                    part.col_offset = part.end_col_offset = 0
            assert isinstance(wrapper, ast.Try)
            wrapper.body = [node]
            return wrapper
        return node


def _recording_print(filename: str, record: list[tuple[int, str]]) -> Callable[..., None]:
    """``print``, also noting what each call from the block's own lines printed."""

    def doc_print(*args: object, sep: str | None = " ", end: str | None = "\n", **kw: Any) -> None:
        caller = sys._getframe(1)
        if caller.f_code.co_filename == filename and kw.get("file") is None:
            text = io.StringIO()
            builtins.print(*args, sep=sep, end=end, file=text)
            record.append((caller.f_lineno, text.getvalue()))
        builtins.print(*args, sep=sep, end=end, **kw)

    return doc_print


def base_namespace(block: Block) -> dict[str, Any]:
    """The README runs with nothing imported; the docs' pages use the package's names."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if block.path.startswith("docs/"):
        namespace.update({name: getattr(century_ring, name) for name in century_ring.__all__})
    return namespace


def close_what_is_left(*namespaces: Mapping[str, Any]) -> None:
    """Rings (cancelling what they have in flight) and sockets a failed example left open."""
    for namespace in namespaces:
        for value in list(namespace.values()):
            if isinstance(value, (century_ring.IoUring, socket.socket)):
                value.close()


def run_doctest(block: Block, namespace: dict[str, Any]) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.code, namespace, block.name, str(ROOT / block.path), block.line - 1
    )
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test, out=out.write)
    assert not runner.failures, out.getvalue()


#: An example still running after this long is stuck (a wait for a completion that never comes).
EXAMPLE_SECONDS = 30


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raises TimeoutError in the example once ``seconds`` have passed: the ring's waits, like
    time.sleep, let a signal handler's exception through."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the example was still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_block(block: Block) -> str:
    """Runs ``block`` as its page shows it, with its setup, in the current directory; returns
    what it printed."""
    setup: Setup = lookup(SETUPS, block) or Setup(why="")
    for name, content in setup.files.items():
        Path(name).write_bytes(content)
    before = base_namespace(block)
    namespace = base_namespace(block)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), time_limit(EXAMPLE_SECONDS):
            exec(compile(setup.before, "<setup>", "exec"), before)
            namespace.update({name: before[name] for name in setup.gives})
            if block.is_doctest:
                run_doctest(block, namespace)
            else:
                run_code(block, namespace)
            after = {**before, **namespace}
            exec(compile(setup.after, "<check after the example>", "exec"), after)
    finally:
        print(stdout.getvalue(), end="")  # for pytest to show if the test fails
        close_what_is_left(namespace, before)
    return stdout.getvalue()


def run_code(block: Block, namespace: dict[str, Any]) -> None:
    filename = str(ROOT / block.path)
    tree = ast.parse(block.code)
    prints, raises = expectations(tree, block.code)
    tree = _ExpectRaises(raises).visit(tree)
    ast.fix_missing_locations(tree)
    ast.increment_lineno(tree, block.line - 1)  # tracebacks point into the page
    printed: list[tuple[int, str]] = []
    namespace["print"] = _recording_print(filename, printed)
    namespace[RAISED] = raised = []
    exec(compile(tree, filename, "exec"), namespace)
    for line, said in prints.items():
        outputs = [text for at, text in printed if at == line + block.line - 1]
        assert outputs, f"line {line + block.line - 1} printed nothing, so nothing to compare"
        for text in outputs:
            assert text.rstrip("\n") == said, (
                f"line {line + block.line - 1} printed {text!r}; its comment says {said!r}"
            )
    assert {line for line, _ in raised} == set(raises)


# -- The tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("block", RUN, ids=[b.name for b in RUN])
def test_example_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block runs as shown, in a fresh directory; what it prints is what the text says."""
    monkeypatch.chdir(tmp_path)
    try:
        out = run_block(block)
    except NotImplementedError as err:
        pytest.skip(str(err))
    listings = [
        listing
        for listing in PYTHON_BLOCKS
        if (owner := lookup(OUTPUT_LISTINGS, listing)) is not None
        and listing.path == block.path
        and owner in block.code
    ]
    for listing in listings:
        assert out.rstrip("\n") == listing.code.rstrip("\n"), (
            f"{block.name} printed:\n{out}\nbut {listing.name} says it prints:\n{listing.code}"
        )


@pytest.mark.parametrize(
    "table", [EXCLUDED, OUTPUT_LISTINGS, SETUPS], ids=["EXCLUDED", "OUTPUT_LISTINGS", "SETUPS"]
)
def test_every_table_entry_names_exactly_one_block(table: Mapping[Key, Any]) -> None:
    """An entry whose block was changed or removed fails here instead of going stale."""
    wrong = {key: [b.name for b in find(key)] for key in table if len(find(key)) != 1}
    assert not wrong, f"entries matching no block, or more than one: {wrong}"


def test_no_block_is_both_excluded_and_run() -> None:
    excluded = [b for b in PYTHON_BLOCKS if lookup(EXCLUDED, b) or lookup(OUTPUT_LISTINGS, b)]
    both = [b.name for b in excluded if lookup(SETUPS, b)]
    assert not both
    assert len(excluded) + len(RUN) == len(PYTHON_BLOCKS)


def test_every_output_listing_belongs_to_a_block_that_runs() -> None:
    for (path, _), owner in OUTPUT_LISTINGS.items():
        assert [b for b in RUN if b.path == path and owner in b.code], owner


def test_the_readme_examples_say_what_they_print() -> None:
    """Each of the README's examples states its output in a comment, which test_example_runs
    checks."""
    examples = [b for b in RUN if b.path == "README.md"]
    assert len(examples) == 3
    for example in examples:
        prints, _ = expectations(ast.parse(example.code), example.code)
        assert prints, example.name


def test_the_readmes_unlabelled_blocks_are_not_python() -> None:
    """A Python example in an unlabelled fence would not be run: label it ```python (and a
    shell command that happens to parse as Python, ```sh)."""
    for block in markdown_blocks(README):
        if block.language:
            continue
        try:
            ast.parse(block.code)
        except SyntaxError:
            continue
        pytest.fail(f"{block.name} is Python in an unlabelled fence: label it python")


def test_the_closed_ring_example_with_its_arguments_filled_in(tmp_path: Path) -> None:
    """docs/sync-api.rst's block, with real arguments for its '...': a ring used after its
    ``with`` block refuses, with ValueError: The ring is closed, as the block's comment says."""
    (block,) = find(("docs/sync-api.rst", "ring.prep_openat(...)"))
    code = block.code.replace(
        "ring.prep_openat(...)", 'ring.prep_openat(AT_FDCWD, "x", FileOpenMode.READ_ONLY)'
    )
    assert code != block.code
    namespace = base_namespace(block)
    tree = _ExpectRaises(expectations(ast.parse(code), code)[1]).visit(ast.parse(code))
    namespace[RAISED] = raised = []
    exec(compile(ast.fix_missing_locations(tree), str(ROOT / block.path), "exec"), namespace)
    ((_, error),) = raised
    assert isinstance(error, ValueError)
    assert str(error) == "The ring is closed"


SPHINX_LITERAL_BLOCKS = r"""
import json, sys
from docutils import nodes
from sphinx.application import Sphinx

source, out = sys.argv[1], sys.argv[2]
app = Sphinx(source, source, out + "/out", out + "/doctrees", "dummy",
             status=None, warning=None, freshenv=True)
app.build()
found = []
for docname in sorted(app.env.found_docs):
    for node in app.env.get_and_resolve_doctree(docname, app.builder).findall(
        lambda n: isinstance(n, (nodes.literal_block, nodes.doctest_block))
    ):
        language = "pycon" if isinstance(node, nodes.doctest_block) else node.get("language", "")
        found.append([node.source, language, node.astext()])
json.dump(found, sys.stdout)
"""


def test_the_blocks_found_are_the_blocks_sphinx_renders(tmp_path: Path) -> None:
    """The scan above finds the same literal blocks in docs/*.rst as Sphinx does, with the
    same languages: a block written in a form the scan misses would otherwise go untested."""
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install '.[test]')")
    built = subprocess.run(
        [sys.executable, "-c", SPHINX_LITERAL_BLOCKS, str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    pages = {str(page): page.relative_to(ROOT).as_posix() for page in rst_pages()}

    def normal(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    sphinx = sorted(
        (pages[source], language, normal(text))
        for source, language, text in json.loads(built.stdout)
        if source in pages  # not a docstring's block
    )
    ours = sorted(
        (b.path, b.language, normal(b.code)) for b in all_blocks() if b.path.startswith("docs/")
    )
    assert ours == sphinx
