"""espeak-ng + sox synthesis and the content cache, with the real tools."""

from __future__ import annotations

import asyncio
import os
import shutil
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from cti.config import GreetingConfig
from cti.greeting.naming import sound_name
from cti.greeting.store import SoundStore
from cti.greeting.synth import SynthesisError, synthesize
from cti.greeting.text import greeting_text

pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng and sox are not installed"
)

HOSTILE = [
    "../../etc/passwd",
    "-rf",
    "--help",
    "-w /tmp/owned.wav",
    "'\"; rm -rf / #",
    "王\r\nagi_network: yes\r\n",
    "a\x00b",
    "\u202eevil",
    "<speak><audio src='/etc/passwd'/></speak>",
    "X" * 10_000,
]


@pytest.fixture
def cfg(tmp_path: Path) -> GreetingConfig:
    return GreetingConfig(sounds_dir=str(tmp_path / "sounds"))


def wav_params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


@pytest.mark.parametrize(("text", "voice"), [("王先生，您好", "cmn"), ("Hello Mr. Smith", "en-us")])
async def test_synthesized_greeting_is_8khz_mono_16bit_wav(cfg, tmp_path, text, voice):
    out = await synthesize(text, voice, tmp_path / "g.wav", cfg)
    rate, channels, width, frames = wav_params(out)
    assert (rate, channels, width) == (8000, 1, 2)
    assert frames > 8000 // 2  # at least half a second of speech
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["g.wav"]  # no temporary file left


async def test_option_like_text_is_spoken_not_obeyed(cfg, tmp_path):
    out = await synthesize("-w /tmp/x.wav --version", "en-us", tmp_path / "o.wav", cfg)
    assert wav_params(out)[3] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.wav"]


async def test_missing_tool_is_a_clear_error(cfg, tmp_path):
    with pytest.raises(SynthesisError, match="not found.*greeting.espeak"):
        await synthesize("hello", "en-us", tmp_path / "x.wav", replace(cfg, espeak="/nonexistent/espeak-ng"))
    with pytest.raises(SynthesisError, match="not found.*greeting.sox"):
        await synthesize("hello", "en-us", tmp_path / "x.wav", replace(cfg, sox="/nonexistent/sox"))
    assert list(tmp_path.iterdir()) == []


async def test_unknown_voice_fails_with_the_tools_message(cfg, tmp_path):
    with pytest.raises(SynthesisError, match="voice does not exist"):
        await synthesize("hello", "zzqq", tmp_path / "x.wav", cfg)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("voice", ["", "-x", "en us"])
async def test_bad_voice_names_are_refused(cfg, tmp_path, voice):
    with pytest.raises(SynthesisError, match="bad voice"):
        await synthesize("hello", voice, tmp_path / "x.wav", cfg)


async def test_empty_text_is_refused(cfg, tmp_path):
    with pytest.raises(SynthesisError, match="empty"):
        await synthesize(" \x00 ", "en-us", tmp_path / "x.wav", cfg)


async def test_timeout_kills_the_tools(cfg, tmp_path):
    slow = tmp_path / "slow-espeak"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    before = set(_children())
    with pytest.raises(SynthesisError, match="timed out"):
        await synthesize("hello", "en-us", tmp_path / "x.wav", replace(cfg, espeak=str(slow)), timeout=0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["slow-espeak"]
    assert set(_children()) - before == set()


def _children() -> list[int]:
    """Live (non-zombie) child processes of this test process."""
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] != "Z":
                kids.append(int(entry))
    return kids


async def test_same_text_is_synthesized_once_and_hardlinked(cfg):
    store = SoundStore(cfg.sounds_dir, cfg)
    text = "王先生，您好"
    a, b = sound_name(1, text, "cmn"), sound_name(2, text, "cmn")
    pa, pb = await asyncio.gather(store.publish(a, text, "cmn"), store.publish(b, text, "cmn"))
    again = await store.publish(a, text, "cmn")
    assert store.syntheses == 1
    assert again == pa and pa.name == f"{a}.wav" and pb.name == f"{b}.wav"
    cache = store.cache_path(text, "cmn")
    assert os.path.samefile(pa, cache) and os.path.samefile(pb, cache)
    assert cache.parent == Path(cfg.sounds_dir) / ".cache"


async def test_a_new_store_reuses_the_cache_on_disk(cfg):
    await SoundStore(cfg.sounds_dir, cfg).publish("greet-1-aaaaaaaaaaaa", "Hello Mr. Smith", "en-us")
    store = SoundStore(cfg.sounds_dir, cfg)
    await store.publish("greet-2-aaaaaaaaaaaa", "Hello Mr. Smith", "en-us")
    assert store.syntheses == 0


async def test_fixed_name_is_replaced_when_its_text_changes(cfg):
    store = SoundStore(cfg.sounds_dir, cfg)
    first = await store.publish("greet-generic-en", "Hello", "en-us", replace=True)
    inode = first.stat().st_ino
    await store.publish("greet-generic-en", "Hello", "en-us", replace=True)
    assert first.stat().st_ino == inode and store.syntheses == 1
    await store.publish("greet-generic-en", "Welcome to the service line", "en-us", replace=True)
    assert store.is_current("greet-generic-en", "Welcome to the service line", "en-us")
    assert store.syntheses == 2


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_hostile_names_never_reach_a_path(cfg, hostile, lang):
    store = SoundStore(cfg.sounds_dir, cfg)
    voice = cfg.voice_en if lang == "en" else cfg.voice_zh
    text = greeting_text(hostile, hostile, hostile, lang)
    if text is None:
        return
    name = sound_name(7, text, voice)
    path = await store.publish(name, text, voice)
    assert path.parent == Path(cfg.sounds_dir)
    assert wav_params(path)[:3] == (8000, 1, 2)
    everything = [str(p.relative_to(cfg.sounds_dir)) for p in Path(cfg.sounds_dir).rglob("*")]
    for part in ("etc", "passwd", "rf", "evil", "agi", "XXXX", "speak"):
        assert not any(part in p for p in everything), everything


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "-rf", "greet-1-x.wav", "X" * 100])
def test_store_refuses_names_that_are_not_sound_names(cfg, bad):
    with pytest.raises(ValueError):
        SoundStore(cfg.sounds_dir, cfg).path(bad)
