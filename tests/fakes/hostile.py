"""A model name that is markup (a ping, a mention, a masked link), the real catalog carrying it,
how each platform should show it, and checks that a payload shows it as text."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import catalog_bytes

HOSTILE = "<!channel> <@U1> @everyone [click](https://evil.example) `x` *b*"
SLACK_SAFE = "&lt;!channel&gt; &lt;@U1&gt; @everyone [click](https://evil.example) `x` *b*"
# Discord: mentions and `<` escaped, @everyone broken by a zero-width space, the masked link's
# bracket escaped; a code span stays a code span (nothing renders inside one).
DISCORD_SAFE = "\\<!channel> \\<@U1> @\u200beveryone \\[click](https://evil.example) `x` \\*b"
RANKED = "deepseek/deepseek-v4-flash-0731"  # #8 of the real export's week to 2026-10-07


def hostile_catalog() -> bytes:
    """The newest real catalog, with a ranked model renamed and a new model added, both named
    HOSTILE; both retire on 2026-10-20 (a sunset in the alert and in `/sunsets`) and carry the
    real model's quality indices (so `/best` lists them)."""
    payload = json.loads(catalog_bytes("2026-08-22T183539Z"))
    ranked = next(e for e in payload["data"] if e["id"] == RANKED)
    ranked["name"] = HOSTILE
    ranked["expiration_date"] = "2026-10-20"
    payload["data"].append({**ranked, "id": "evil/model", "canonical_slug": "evil/model",
                            "name": HOSTILE})
    return json.dumps(payload).encode()


def slack_safe(payload: Any) -> str:
    """The payload as sent, after checking that nothing in it can ping or link."""
    text = json.dumps(payload, ensure_ascii=False)
    assert "<!channel>" not in text and "<@U1>" not in text
    return text


def discord_safe(payload: dict[str, Any]) -> str:
    """The text of the payload's embeds, after checking that none of it can ping or link."""
    assert payload["allowed_mentions"] == {"parse": []}
    text = "\n".join(str(value) for embed in payload["embeds"] for value in _texts(embed))
    assert not re.search(r"(?<!\\)<[!@#]", text)  # every `<` of a mention is escaped
    assert "@everyone" not in text and not re.search(r"(?<!\\)\[click\]", text)
    return text


def _texts(embed: dict[str, Any]) -> list[object]:
    return [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text"),
            *(part for field in embed.get("fields", []) for part in field.values())]
