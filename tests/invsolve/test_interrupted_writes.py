"""A writer killed mid-write never leaves a partial file under the final name.

Each test starts a Python process that writes through :func:`invsolve.files.atomic_write`
(the path every output of the package takes), waits until the process is inside the
write with part of the content on disk, and interrupts it with a signal.  The target must
keep its previous content (or stay absent), whatever the signal: SIGINT unwinds through
the writer's cleanup, SIGKILL gives it no chance to run any.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_WRITER = textwrap.dedent(
    """
    import signal, sys, time
    from invsolve.files import atomic_write

    # a shell that starts jobs in the background ignores SIGINT in them; Ctrl-C's behaviour is under test
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def slow_write(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"new partial content " * 1000)
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
            handle.write(b"the rest")

    atomic_write(sys.argv[1], slow_write)
    """
)


def _interrupt_mid_write(target: Path, sig: signal.Signals) -> int:
    """Run the slow writer on ``target``, send ``sig`` once part of the content is on disk; its exit code."""
    # run outside the checkout: there, `python -c` would import the source folder invsolve/, not the installed package
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=target.parent,
    )
    try:
        if process.stdout.readline().strip() != "writing":
            process.kill()
            pytest.fail(f"the writer did not reach its write: {process.communicate()[1]}")
        partial = [path for path in target.parent.iterdir() if path.name.startswith(f".{target.name}.")]
        assert len(partial) == 1 and partial[0].stat().st_size > 0, "the content being written is not on disk"
        process.send_signal(sig)
        return process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_write_keeps_the_previous_file(tmp_path: Path, sig: signal.Signals) -> None:
    target = tmp_path / "recon.npy"
    target.write_bytes(b"previous result")
    code = _interrupt_mid_write(target, sig)
    assert code != 0
    assert target.read_bytes() == b"previous result"
    leftovers = sorted(path.name for path in tmp_path.iterdir() if path != target)
    if sig == signal.SIGINT:  # unwinds through atomic_write, which removes its temporary file
        assert leftovers == []
    else:  # nothing runs after SIGKILL: the temporary stays, hidden, never under the final name
        assert len(leftovers) == 1 and leftovers[0].startswith(".recon.npy.") and leftovers[0].endswith(".tmp")


def test_an_interrupted_first_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    _interrupt_mid_write(target, signal.SIGKILL)
    assert not target.exists()
    assert all(path.name.startswith(".metrics.json.") for path in tmp_path.iterdir())


def test_a_completed_write_replaces_the_file_whole(tmp_path: Path) -> None:
    from invsolve.files import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda temporary: temporary.write_bytes(b"new content"))
    assert target.read_bytes() == b"new content"
    assert [path.name for path in tmp_path.iterdir()] == ["out.bin"]
