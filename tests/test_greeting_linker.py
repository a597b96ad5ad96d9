"""Hard links in bulk: the ``python -m cti.greeting.linker`` child and its asyncio driver (with thread fallback)."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cti.greeting import linker
from cti.greeting.links import BulkLinker


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    d = tmp_path / "sounds"
    (d / ".cache").mkdir(parents=True)
    (d / ".cache" / "aaa.wav").write_bytes(b"RIFF-a")
    (d / ".cache" / "bbb.wav").write_bytes(b"RIFF-b")
    return d


def run_child(sounds: Path, stdin: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cti.greeting.linker", "--dir", str(sounds), *args],
        input=stdin.decode(), capture_output=True, text=True, timeout=60,
    )


CHILD_INPUT = (
    b".cache/aaa.wav\tgreet-1-aaa.wav\n"
    b"no tab on this line\n"
    b".cache/missing.wav\tgreet-2-mmm.wav\n"
    b"../../etc/passwd\tgreet-3-xxx.wav\n"
    b".cache/aaa.wav\tsub/dir.wav\n"
    b".cache/bbb.wav\tgreet-4-bbb.wav\n"
    b"\n"
    b".cache/aaa.wav\tgreet-5-aaa.wav\t\n"
)


def test_child_links_good_lines_and_reports_bad_ones(sounds):
    result = run_child(sounds, CHILD_INPUT)
    assert result.returncode == 1, result.stderr  # some lines failed: reported, not a crash
    out = result.stdout.splitlines()
    fails = {int(line.split()[1]): line for line in out if line.startswith("fail ")}
    assert sorted(fails) == [2, 3, 4, 5, 8]
    assert "ENOENT" in fails[3]
    assert "done 7" in out  # the empty line is a flush marker
    assert out[-1] == "end 2 0 5"
    assert os.path.samefile(sounds / "greet-1-aaa.wav", sounds / ".cache" / "aaa.wav")
    assert os.path.samefile(sounds / "greet-4-bbb.wav", sounds / ".cache" / "bbb.wav")
    assert sorted(p.name for p in sounds.iterdir()) == [".cache", "greet-1-aaa.wav", "greet-4-bbb.wav"]
    assert not (sounds.parent.parent / "etc").exists()


def test_child_run_twice_gives_the_same_result(sounds):
    good = b".cache/aaa.wav\tgreet-1-aaa.wav\n.cache/bbb.wav\tgreet-2-bbb.wav\n"
    first = run_child(sounds, good)
    before = sorted((p.name, p.stat().st_ino) for p in sounds.iterdir())
    second = run_child(sounds, good)
    assert (first.returncode, first.stdout) == (0, "end 2 0 0\n")
    assert (second.returncode, second.stdout) == (0, "end 0 2 0\n")  # EEXIST: already done
    assert sorted((p.name, p.stat().st_ino) for p in sounds.iterdir()) == before


def test_child_reads_a_file_and_refuses_bad_usage(sounds, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(b".cache/aaa.wav\tgreet-9-aaa.wav\n")
    assert run_child(sounds, b"", str(listing)).stdout == "end 1 0 0\n"
    assert run_child(sounds, b"", str(tmp_path / "nope.txt")).returncode == 2
    assert run_child(sounds, b"", "--bogus").returncode == 2
    bad_dir = subprocess.run(
        [sys.executable, "-m", "cti.greeting.linker", "--dir", str(tmp_path / "absent")],
        input="", capture_output=True, text=True, timeout=60,
    )
    assert bad_dir.returncode == 2 and "cannot open directory" in bad_dir.stderr


def test_link_limit_falls_back_to_a_copy_that_becomes_the_cache_entry(sounds, monkeypatch):
    real_link = os.link
    calls = []

    def full_link(src, dst, **kw):
        calls.append(src)
        if len(calls) == 1:
            raise OSError(errno.EMLINK, "Too many links")
        return real_link(src, dst, **kw)

    monkeypatch.setattr(linker.os, "link", full_link)
    old_inode = (sounds / ".cache" / "aaa.wav").stat().st_ino
    fd = os.open(sounds, os.O_RDONLY | os.O_DIRECTORY)
    try:
        tally = linker.link_lines([b".cache/aaa.wav\tgreet-1-aaa.wav"], fd)
    finally:
        os.close(fd)
    assert (tally.linked, tally.existing, tally.failures) == (1, 0, [])
    target, cache = sounds / "greet-1-aaa.wav", sounds / ".cache" / "aaa.wav"
    assert target.read_bytes() == b"RIFF-a" and os.path.samefile(target, cache)
    assert cache.stat().st_ino != old_inode  # later links go to the fresh inode
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert not [p for p in sounds.iterdir() if p.name.startswith(".tmp-")]


CHUNK = [(".cache/aaa.wav", "greet-1-aaa.wav"), (".cache/missing.wav", "greet-2-mmm.wav"),
         ("bad\tpair", "x.wav"), (".cache/bbb.wav", "greet-3-bbb.wav"), ("../up.wav", "greet-4-up.wav"),
         ("", "greet-5-empty.wav")]


async def link_twice(sounds: Path, python: str | None) -> tuple[bool, dict[int, str], dict[int, str]]:
    async with BulkLinker(sounds, python=python) as bulk:
        first = await bulk.submit(CHUNK)
        in_child = bulk.in_child
        big = bulk.submit([(".cache/bbb.wav", f"greet-{i}-bbb.wav") for i in range(10, 3010)])
        again = await bulk.submit(CHUNK)
        assert await big == {}
        empty = await bulk.submit([(".cache/aaa.wav", "greet-7-aaa.wav"), ("", "greet-6-e.wav")])
        assert list(empty) == [1] and "empty path" in empty[1]  # refused by the linker itself
    assert (bulk.done, bulk.failed) == (2 + 3000 + 2 + 1, 8 + 1)
    return in_child, first, again


@pytest.mark.parametrize("python", [None, "/nonexistent/python3", "/bin/false"], ids=["child", "no-child", "child-dies"])
async def test_bulk_linker_child_and_thread_fallback_agree(sounds, python):
    in_child, first, again = await link_twice(sounds, python)
    assert in_child is (python is None)
    assert sorted(first) == [1, 2, 4, 5] and first[2] == "bad pair" and "ENOENT" in first[1]
    assert first[5] == "bad pair"
    assert again == first  # the second time the links exist: done, the bad ones still fail
    assert os.path.samefile(sounds / "greet-1-aaa.wav", sounds / ".cache" / "aaa.wav")
    assert os.path.samefile(sounds / "greet-3009-bbb.wav", sounds / ".cache" / "bbb.wav")
    assert len(list(sounds.glob("greet-*-bbb.wav"))) == 3001
    assert not (sounds / "greet-2-mmm.wav").exists() and not (sounds.parent / "up.wav").exists()


async def test_bulk_linker_redoes_what_a_dying_child_left(sounds, tmp_path):
    # a "python" that links nothing, confirms nothing and dies after reading its first chunk
    fake = tmp_path / "dies.sh"
    fake.write_text("#!/bin/sh\nhead -n 1 >/dev/null\nexit 3\n")
    fake.chmod(0o755)
    async with BulkLinker(sounds, python=str(fake)) as bulk:
        futures = [bulk.submit([(".cache/aaa.wav", f"greet-{i}-aaa.wav")]) for i in range(50)]
        results = await asyncio.gather(*futures)
    assert results == [{}] * 50 and not bulk.in_child
    assert len(list(sounds.glob("greet-*-aaa.wav"))) == 50


async def test_child_runs_this_cti_not_one_in_the_current_directory(sounds, tmp_path, monkeypatch):
    impostor = tmp_path / "elsewhere" / "cti"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise SystemExit('wrong cti')\n")
    monkeypatch.chdir(impostor.parent)
    async with BulkLinker(sounds) as bulk:
        assert await bulk.submit([(".cache/aaa.wav", "greet-1-aaa.wav")]) == {}
        assert bulk.in_child
