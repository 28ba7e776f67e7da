"""The model inside the sandbox's caption flow: what an LLM prompted with the persona's voice
would write, so that `glimpse-agent sandbox` shows captions that read like an artist's, vary from
post to post, and still visibly carry the topic and hashtags the agent sent as tweaks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

# What the emulated model writes: an artist's captions, chatty or brief as the persona's voice
# asks. ``{Topic}`` is the topic with a capital first letter.
_CHATTY = (
    "{Topic}, again. I keep painting it and it keeps surprising me!",
    "This started as a quick sketch of {topic} and got away from me.",
    "{Topic}: the light only held for a minute, so I worked fast!",
    "Trying {topic} from a new angle today. Does it work for you?",
    "Some days the subject picks you. Today it was {topic}!",
    "{Topic}, not quite as I remember it, but close to how it felt.",
    "Back to {topic}. I'm not done with it yet, friends!",
    "Studio notes: {topic}, made with whatever was left on the palette.",
    "Woke up thinking about {topic}, so here it is.",
    "A small study of {topic}. Tell me what you see first!",
    "{Topic} in the sketchbook this week. Still learning how the colours sit.",
    "If {topic} had a sound, I think it would be this.",
)
_BRIEF = (
    "{Topic}. Again.",
    "{Topic}, early.",
    "{Topic}. A quiet one.",
    "{Topic}. Nobody else around.",
    "{Topic}, as it was.",
    "{Topic}, studied slowly.",
    "Kept this one: {topic}.",
    "{Topic}. It stayed a while.",
    "Another look at {topic}.",
    "{Topic}. Enough said.",
)
_BRIEF_WORDS = ("terse", "brief", "laconic", "minimal", "few words")


def plausible_caption(variables: dict[str, str], key: str, history: Sequence[str] = ()) -> str:
    """A caption as a model prompted with the persona's voice would write it: never the voice
    text itself, but its register (brief or chatty, lowercase, exclamation marks or not).

    Like a model that sees its chat memory, it does not say the same thing twice in a row: the
    template is picked by a stable hash of ``key`` (so a rerun repeats itself), passing over
    those used in the session's recent answers and any that would give an earlier answer."""
    voice = variables.get("voice", "").lower()
    topic = " ".join(variables.get("topic", "").split()) or "this one"
    hashtags = " ".join(variables.get("hashtags", "").split())
    choices = _BRIEF if any(w in voice for w in _BRIEF_WORDS) else _CHATTY

    def styled(text: str) -> str:
        if "exclamation" not in voice or "never" in voice:
            text = text.replace("!", ".")
        return text.lower() if "lowercase" in voice else text

    def write(template: str) -> str:
        text = template.replace("{Topic}", topic[:1].upper() + topic[1:])
        return styled(text.replace("{topic}", topic))

    answers = [h.casefold() for h in history]
    recent = answers[max(0, len(answers) - 2 * len(choices) // 3) :]

    def fresh(template: str) -> bool:
        # A template's longest fixed wording marks it in an answer.
        mark = max(re.split(r"\{[Tt]opic\}", styled(template)), key=len).strip().casefold()
        said = write(template).casefold()
        return not any(mark in h for h in recent) and not any(said in h for h in answers)

    digest = hashlib.sha256(key.encode("utf-8")).digest()
    start = int.from_bytes(digest[:8], "big")
    ordered = [choices[(start + i) % len(choices)] for i in range(len(choices))]
    text = write(next((t for t in ordered if fresh(t)), ordered[0]))
    return f"{text} {hashtags}".strip()
