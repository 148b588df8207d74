"""Extraction in several threads of one process: the embedded runtime, the Python API, the tests.

lxml 6 keeps the string dictionary that interns tag and attribute names with the parser, and a
thread whose first parse uses a parser another thread has used adopts that thread's dictionary.
With one module-level parser, every extraction thread ended up inserting names into one libxml2
dictionary at once, and the process died of heap corruption (SIGSEGV, SIGABRT with
"munmap_chunk(): invalid pointer") during the pipeline tests.  Real lxml, real threads, and a
child process, so that a crash is an exit code and not the end of the test run.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import lxml.html
from lxml.etree import _Element

from workers.extract.metadata import parse_html

ROOT = Path(__file__).resolve().parents[2]
PAGE = "<html><head><title>t</title></head><body><p>one</p><section>two</section></body></html>"

#: libxml2's xmlNode begins with _private (a pointer), type (an int, padded) and name (a pointer).
_NODE_TYPE_OFFSET, _NODE_NAME_OFFSET, _ELEMENT_NODE = 8, 16, 1


def interned_name(element: _Element) -> int:
    """The address of the C string libxml2 holds as ``element``'s tag name.

    Names are interned in the document's string dictionary, so two trees whose tags share an
    address share a dictionary.  The lxml proxy's pointer to its node is found by looking for the
    field that points at an element node whose name is the element's tag; none found is an error.
    """
    # Only the proxy's own fields (past the object header): each is NULL, an object, a table or the
    # node, all of them memory that can be read.
    for offset in range(16, type(element).__basicsize__ - 7, 8):
        node = ctypes.c_void_p.from_address(id(element) + offset).value
        if not node or node % 8:
            continue
        name = ctypes.c_void_p.from_address(node + _NODE_NAME_OFFSET).value
        if (ctypes.c_int.from_address(node + _NODE_TYPE_OFFSET).value == _ELEMENT_NODE and name
                and ctypes.string_at(name) == element.tag.encode()):
            return name
    raise AssertionError("no pointer to the element's libxml2 node found in its lxml proxy")


def names_per_thread(parse: Callable[[str], _Element | None], threads: int = 3) -> list[int]:
    """Parse PAGE once in each of ``threads`` new threads, one after the other; the address of
    each tree's interned "section"."""
    found: list[int] = []
    trees: list[_Element] = []  # kept alive, so no address is reused by the next tree

    def run() -> None:
        tree = parse(PAGE)
        assert tree is not None
        trees.append(tree)
        section = tree.find(".//section")
        assert section is not None
        found.append(interned_name(section))

    for _ in range(threads):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    return found


def test_the_probe_sees_threads_that_share_a_dictionary() -> None:
    shared = lxml.html.HTMLParser(encoding="utf-8")
    names = names_per_thread(lambda html: lxml.html.fromstring(html.encode(), parser=shared))
    assert len(set(names)) == 1, "one parser used by three threads: one dictionary (lxml's behaviour)"


def test_pages_parsed_in_different_threads_keep_their_own_string_dictionary() -> None:
    names = names_per_thread(parse_html)
    assert len(set(names)) == 3, "each thread interns names in a dictionary of its own"


# Each round starts new threads (a new thread is when a dictionary gets adopted) that parse pages
# full of names never seen before (so every parse inserts into the dictionary) with the stage's
# parser, with lxml's default one (readability's summary fragments), and copy the tree (trafilatura).
_HAMMER = textwrap.dedent("""
    import copy, random, sys, threading, time
    import lxml.html
    from workers.extract.metadata import parse_html

    def page(rng):
        items = "".join(f'<div data-k{rng.getrandbits(40):x}="v"><p>word {i}</p>'
                        f'<x-t{rng.getrandbits(40):x}>t</x-t{rng.getrandbits(40):x}></div>' for i in range(300))
        return f"<html><head><title>t</title></head><body>{items}</body></html>"

    def work(seed):
        rng = random.Random(seed)
        for _ in range(5):
            tree = parse_html(page(rng))
            lxml.html.fromstring(page(rng))
            copy.deepcopy(tree)

    stop, rounds = time.monotonic() + float(sys.argv[1]), 0
    while time.monotonic() < stop:
        threads = [threading.Thread(target=work, args=(rounds * 10 + k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rounds += 1
    print(rounds)
""")


def test_concurrent_parsing_in_new_threads_does_not_crash_the_process() -> None:
    # Before the fix the child died within a second (SIGABRT or SIGSEGV); 5 s is several hundred rounds.
    done = subprocess.run([sys.executable, "-c", _HAMMER, "5"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"the child died (exit {done.returncode}): {done.stderr[-2000:]}"
    assert int(done.stdout) > 10, "rounds of new threads were run"
