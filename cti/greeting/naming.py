"""Sound names: derived from ids and content hashes, never from a (caller-supplied) name.

A sound name is what ``Playback()`` gets after the configured prefix (``cti/<name>``); its file is
``<sounds_dir>/<name>.wav``. Every name matches :data:`SOUND_NAME_RE`, so it is always a safe path part.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Bump when the audio pipeline changes (voice options, format): every cached sound is then rebuilt.
PIPELINE_VERSION = "1"

SOUND_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

GENERIC_GREETING = {"zh": "greet-generic-zh", "en": "greet-generic-en"}
IVR_MENU = {"zh": "ivr-menu-zh", "en": "ivr-menu-en"}
AFTER_HOURS = {"zh": "afterhours-zh", "en": "afterhours-en"}

IVR_MENU_TEXT = {
    "zh": "请按1选择家电，按2选择手机，按3投诉",
    "en": "For appliances press 1, for mobile press 2, for complaints press 3",
}
AFTER_HOURS_TEXT = {
    "zh": "您好，现在是非工作时间。我们的服务时间是每天早上8点到晚上8点半，请在服务时间内再次致电，谢谢。",
    "en": "Thank you for calling. We are closed now. Our hours are 8 a.m. to 8:30 p.m., every day. "
    "Please call again during business hours.",
}


@dataclass(frozen=True)
class Prompt:
    """A fixed sound: its name, language and the text it says."""

    name: str
    language: str
    text: str


def content_key(text: str, voice: str) -> str:
    """The cache key of a synthesized sound: sha256 of the pipeline version, voice and text (hex)."""
    data = "\0".join((PIPELINE_VERSION, voice, text)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def sound_name(customer_id: int, text: str, voice: str) -> str:
    """``greet-<customer_id>-<content_key[:12]>``: a customer's greeting, named by id and content."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int) or customer_id < 0:
        raise ValueError(f"customer_id must be a non-negative int, got {customer_id!r}")
    return f"greet-{customer_id}-{content_key(text, voice)[:12]}"


def is_customer_sound(name: str, customer_id: int) -> bool:
    """True when ``name`` is one of this customer's greeting names."""
    return re.fullmatch(rf"greet-{int(customer_id)}-[0-9a-f]{{12}}", name or "") is not None


def fixed_prompts(generic_zh: str, generic_en: str) -> list[Prompt]:
    """Every fixed sound cti needs: generic greetings, the IVR menu and the after-hours message."""
    return [
        Prompt(GENERIC_GREETING["zh"], "zh", generic_zh),
        Prompt(GENERIC_GREETING["en"], "en", generic_en),
        Prompt(IVR_MENU["zh"], "zh", IVR_MENU_TEXT["zh"]),
        Prompt(IVR_MENU["en"], "en", IVR_MENU_TEXT["en"]),
        Prompt(AFTER_HOURS["zh"], "zh", AFTER_HOURS_TEXT["zh"]),
        Prompt(AFTER_HOURS["en"], "en", AFTER_HOURS_TEXT["en"]),
    ]
