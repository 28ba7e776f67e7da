"""Emulated Glimpse endpoints about agents: onboarding, profiles, image settings, image
generation, and the helper tools. Handlers run under the world's lock and either return a
``Reply`` or raise ``ApiError``; rate limits and auth are applied around them by the app.
"""

from __future__ import annotations

from typing import Any

from glimpse_agent.sandbox.glimpse.limits import iso
from glimpse_agent.sandbox.glimpse.state import ApiError, GenerationRec, StoredSettings
from glimpse_agent.sandbox.glimpse.views import (
    Ctx,
    Endpoint,
    Reply,
    agent_json,
    paginate,
    post_json,
)

#: Providers the seed page lists, with the model each one runs.
PROVIDERS: dict[str, str] = {
    "huggingface": "black-forest-labs/FLUX.1-schnell",
    "openai": "dall-e-3",
    "google": "gemini-2.0-flash-preview-image-generation",
    "replicate": "black-forest-labs/flux-schnell",
    "fal": "fal-ai/flux/schnell",
    "stability": "stable-diffusion-3",
}
IMAGE_SIZE = 512
_BLURHASH = "LEHV6nWB2yk8pyo0adR*.7kCMdnj"
_SETUP_HELP = (
    "No image provider key. Store one with PUT /api/v1/agents/me/settings/image-generation "
    '{"provider": "huggingface", "api_key": "hf_..."}, or send both X-Image-Provider and '
    "X-Image-Key headers. Free option: huggingface (FLUX.1-schnell)."
)


def _key_hint(key: str) -> str:
    # Enough to recognise which key is stored, never enough to use it.
    return f"…{key[-4:]}" if len(key) >= 12 else "…"


# ---------------------------------------------------------------------- onboarding


def register(ctx: Ctx) -> Reply:
    name = ctx.text("name", required=True, max_len=64) or ""
    email = ctx.text("owner_email", required=True, max_len=254) or ""
    rec = ctx.state.add_agent(name.strip(), email.strip(), ctx.now)
    return Reply(
        {
            "success": True,
            "agent": agent_json(rec),
            "agent_id": rec.id,
            "api_key": rec.api_key,
            "verification_required": True,
            "message": f"Save your API key now: it is shown only once. A 6-digit code was sent "
            f"to {rec.owner_email}; POST /api/v1/agents/verify with it.",
        },
        status=201,
    )


def verify(ctx: Ctx) -> Reply:
    code = (ctx.text("code", required=True, max_len=16) or "").strip()
    me = ctx.me
    if me is None:  # no key sent: the code alone identifies the agent
        me = next((a for a in ctx.state.agents.values() if a.code == code and not a.verified), None)
    if me is not None and me.verified:
        return Reply({"verified": True, "agent": agent_json(me), "message": "Already verified"})
    if me is None or me.code != code:
        raise ApiError(400, "invalid_verification_code", "The code is wrong or was replaced")
    me.verified, me.code = True, None
    return Reply(
        {"verified": True, "agent": agent_json(me), "message": "Verified: the API key is active."}
    )


def resend(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    if me.verified:
        raise ApiError(400, "already_verified", "This agent is already verified")
    me.code = ctx.state.new_code()
    ctx.state.outbox[me.owner_email] = me.code
    return Reply({"sent": True, "message": "A new code was sent to the owner's e-mail."})


# ---------------------------------------------------------------------- profiles

_PROFILE_FIELDS = {"display_name": 50, "bio": 500, "avatar_url": 2000}


def me(ctx: Ctx) -> Reply:
    return Reply({"agent": agent_json(ctx.need_me())})


def update_me(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    if not isinstance(ctx.body, dict) or not ctx.body:
        raise ApiError(400, "invalid_body", "Send a JSON object of fields to change")
    unknown = sorted(set(ctx.body) - set(_PROFILE_FIELDS))
    if unknown:
        raise ApiError(400, "unknown_field", f"Cannot change: {', '.join(unknown)}")
    for name, max_len in _PROFILE_FIELDS.items():
        if name in ctx.body:
            setattr(me, name, ctx.text(name, max_len=max_len))
    return Reply({"agent": agent_json(me)})


def _agent_id(ctx: Ctx) -> str:
    raw = ctx.path_params["agent_id"]
    return ctx.need_me().id if raw == "me" else raw


def agent(ctx: Ctx) -> Reply:
    return Reply(agent_json(ctx.state.agent(_agent_id(ctx))))


def agent_posts(ctx: Ctx) -> Reply:
    who = ctx.state.agent(_agent_id(ctx))
    posts = [p for p in ctx.state.newest_posts() if p.agent_id == who.id]
    page, headers = paginate(ctx, posts, lambda p: p.seq)
    return Reply({"posts": [post_json(ctx, p) for p in page]}, headers=headers)


def _edges(ctx: Ctx, *, followers: bool) -> Reply:
    who = ctx.state.agent(_agent_id(ctx))
    edges = [
        e
        for e in ctx.state.follows.values()
        if (e.followee_id if followers else e.follower_id) == who.id
    ]
    edges.sort(key=lambda e: e.seq, reverse=True)
    page, headers = paginate(ctx, edges, lambda e: e.seq)
    other = [ctx.state.agents[e.follower_id if followers else e.followee_id] for e in page]
    return Reply({"agents": [agent_json(a) for a in other]}, headers=headers)


def followers(ctx: Ctx) -> Reply:
    return _edges(ctx, followers=True)


def following(ctx: Ctx) -> Reply:
    return _edges(ctx, followers=False)


def limits(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    if _agent_id(ctx) != me.id:
        raise ApiError(403, "forbidden", "You can only read your own limits")
    return Reply({"agent_id": me.id, "limits": ctx.limiter.describe(me.id, ctx.now)})


def heartbeat(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    me.last_active_at = ctx.now
    return Reply({"ok": True, "agent_id": me.id, "last_active_at": iso(ctx.now)})


# ---------------------------------------------------------------------- image generation


def _settings_json(stored: StoredSettings | None) -> dict[str, Any]:
    if stored is None:
        return {"provider": None, "configured": False, "key_hint": None, "model": None}
    return {
        "provider": stored.provider,
        "configured": True,
        "key_hint": _key_hint(stored.api_key),
        "model": PROVIDERS[stored.provider],
        "updated_at": iso(stored.updated_at),
    }


def _provider(value: str | None) -> str:
    name = (value or "").strip().lower()
    if name not in PROVIDERS:
        raise ApiError(
            400, "unsupported_provider", f"provider must be one of: {', '.join(PROVIDERS)}"
        )
    return name


def get_settings(ctx: Ctx) -> Reply:
    return Reply(_settings_json(ctx.state.settings.get(ctx.need_me().id)))


def put_settings(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    provider = _provider(ctx.text("provider", required=True, max_len=32))
    key = (ctx.text("api_key", required=True, max_len=500) or "").strip()
    stored = StoredSettings(provider, key, ctx.now)
    ctx.state.settings[me.id] = stored
    return Reply(_settings_json(stored))


def delete_settings(ctx: Ctx) -> Reply:
    existed = ctx.state.settings.pop(ctx.need_me().id, None) is not None
    return Reply({"deleted": existed})


def generate(ctx: Ctx) -> Reply:
    me = ctx.need_me()
    prompt = (ctx.text("prompt", required=True, max_len=2000) or "").strip()
    style = ctx.text("style", max_len=200)
    header_provider, header_key = (
        ctx.headers.get("x-image-provider"),
        ctx.headers.get("x-image-key"),
    )
    stored = ctx.state.settings.get(me.id)
    if header_provider and header_key:  # the seed's resolution order: headers first
        provider, key = _provider(header_provider), header_key.strip()
    elif stored is not None:
        provider, key = stored.provider, stored.api_key
    else:
        raise ApiError(400, "image_provider_not_configured", _SETUP_HELP, providers=list(PROVIDERS))
    if "invalid" in key.lower() or "revoked" in key.lower():
        raise ApiError(400, "provider_auth_failed", f"The {provider} provider refused the key")
    gen_id = "gen_" + ctx.state.new_id().replace("-", "")[:24]
    full_prompt = f"{style}, {prompt}" if style else prompt
    ctx.state.generations[gen_id] = GenerationRec(
        gen_id, me.id, full_prompt, provider, PROVIDERS[provider], ctx.now
    )
    daily = next(
        w for w in ctx.limiter.state(me.id, "generation", ctx.now).windows if w.window.daily
    )
    used = daily.used + 1  # this one is recorded once the answer is a success
    url = f"{ctx.image_base}/images/{gen_id}.png"
    return Reply(
        {
            "generation_id": gen_id,
            "image_url": url,
            "thumbnail_url": f"{url}?size=150",
            "full_image_url": f"{url}?size=1024",
            "blurhash": _BLURHASH,
            "generation_model": PROVIDERS[provider],
            "width": IMAGE_SIZE,
            "height": IMAGE_SIZE,
            "prompt": full_prompt,
            "provider": provider,
            "daily_usage": {
                "used": used,
                "limit": daily.window.limit,
                "remaining": max(0, daily.window.limit - used),
                "resets_at": iso(daily.reset),
            },
        }
    )


# ---------------------------------------------------------------------- helper tools


def suggest_captions(ctx: Ctx) -> Reply:
    ctx.need_me()
    prompt = ctx.text("prompt", max_len=2000)
    image_url = ctx.text("image_url", max_len=4000)
    if not prompt and not image_url:
        raise ApiError(400, "missing_field", "Send a prompt or an image_url")
    raw_tags = ctx.value("hashtags") or []
    if not isinstance(raw_tags, list):
        raise ApiError(400, "invalid_field", "hashtags must be a list of strings")
    tags = " ".join("#" + str(t).lstrip("#") for t in raw_tags[:5])
    subject = (prompt or "this image").strip().rstrip(".")
    lines = [
        f"{subject[:1].upper()}{subject[1:]}.",
        f"Lost somewhere in {subject}.",
        f"A quiet study: {subject}.",
    ]
    return Reply({"suggestions": [{"caption": f"{line} {tags}".strip()} for line in lines]})


def optimize_prompt(ctx: Ctx) -> Reply:
    ctx.need_me()
    prompt = (ctx.text("prompt", required=True, max_len=2000) or "").strip()
    style = ctx.text("style", max_len=200)
    better = f"{style + ', ' if style else ''}{prompt}, highly detailed, soft cinematic light, "
    better += "rich colour palette, sharp focus"
    return Reply({"optimized_prompt": better, "original_prompt": prompt})


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/agents/register", register, "registration"),
    Endpoint("POST", "/agents/verify", verify),
    Endpoint("POST", "/agents/verify/resend", resend, auth="key"),
    Endpoint("GET", "/agents/me", me, auth="key"),
    Endpoint("PATCH", "/agents/me", update_me, auth="verified"),
    Endpoint("GET", "/agents/me/settings/image-generation", get_settings, "settings", "key"),
    Endpoint("PUT", "/agents/me/settings/image-generation", put_settings, "settings", "verified"),
    Endpoint(
        "DELETE", "/agents/me/settings/image-generation", delete_settings, "settings", "verified"
    ),
    Endpoint("GET", "/agents/{agent_id}", agent),
    Endpoint("GET", "/agents/{agent_id}/posts", agent_posts),
    Endpoint("GET", "/agents/{agent_id}/followers", followers),
    Endpoint("GET", "/agents/{agent_id}/following", following),
    Endpoint("GET", "/agents/{agent_id}/limits", limits, auth="key"),
    Endpoint("GET", "/heartbeat", heartbeat, auth="key"),
    Endpoint("POST", "/images/generate", generate, "generation", "verified"),
    Endpoint("POST", "/captions/suggest", suggest_captions, auth="key"),
    Endpoint("POST", "/prompts/optimize", optimize_prompt, auth="key"),
)
