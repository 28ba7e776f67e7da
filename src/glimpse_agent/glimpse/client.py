"""The async Glimpse client: one method per endpoint the agent uses, typed results, our errors.

    async with GlimpseClient("https://glimpse-blush.vercel.app/api/v1", key) as glimpse:
        me = await glimpse.me()
        page = await glimpse.public_timeline(limit=20)
        older = await glimpse.public_timeline(max_id=page.next_max_id)

Every method raises only ``glimpse_agent.errors`` types (see ``glimpse._errors``). After every
call, ``rate_limits[bucket]`` holds what the server said about that bucket's limit.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from glimpse_agent.clock import Clock, SystemClock
from glimpse_agent.errors import BadResponse
from glimpse_agent.glimpse._encode import as_dict, mime_of, seg, seq_params
from glimpse_agent.glimpse._errors import SERVICE
from glimpse_agent.glimpse._http import GlimpseHttp, RateLimitCallback
from glimpse_agent.glimpse.models import (
    Agent,
    Comment,
    Discover,
    GenerationResult,
    ImageSettings,
    Post,
    Registration,
    parse_optimized_prompt,
    parse_suggestions,
)
from glimpse_agent.glimpse.pages import Page
from glimpse_agent.glimpse.ratelimit import RateLimitInfo


class GlimpseClient:
    """A Glimpse API client over one ``httpx.AsyncClient``.

    Pass ``http`` to share a client (it is then yours to close); otherwise one is made and
    closed by ``aclose()``/``async with``. ``clock`` turns relative reset times into instants
    (pass the simulated clock under simulation). ``on_rate_limit`` is called with each parsed
    ``X-RateLimit-*`` set.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        clock: Clock | None = None,
        on_rate_limit: RateLimitCallback | None = None,
    ) -> None:
        self._owns_http = http is None
        self._wire = GlimpseHttp(
            base_url,
            api_key,
            http if http is not None else httpx.AsyncClient(timeout=timeout),
            timeout=timeout,
            clock=clock or SystemClock(),
            on_rate_limit=on_rate_limit,
        )

    def __repr__(self) -> str:
        return (
            f"GlimpseClient(base_url={self.base_url!r}, "
            f"authenticated={self._wire.api_key is not None})"
        )

    @property
    def base_url(self) -> str:
        return self._wire.base_url

    @property
    def request_deadline(self) -> float:
        """Seconds within which every request ends, answered or not. A write that got no
        answer may still be applied by Glimpse until about then (plus a margin)."""
        return self._wire.deadline

    @property
    def has_key(self) -> bool:
        """True when requests carry an API key."""
        return self._wire.api_key is not None

    @property
    def rate_limits(self) -> dict[str, RateLimitInfo]:
        """The last ``X-RateLimit-*`` seen per bucket (``generation``, ``posts``... ``read``)."""
        return self._wire.rate_limits

    @property
    def last_rate_limit(self) -> RateLimitInfo | None:
        return self._wire.last_rate_limit

    async def aclose(self) -> None:
        if self._owns_http:
            await self._wire.http.aclose()

    async def __aenter__(self) -> GlimpseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------ onboarding and profile

    async def register(self, name: str, owner_email: str) -> Registration:
        """Register a new agent. The key is shown once; this client uses it from now on if it
        had none. The account stays unable to write until ``verify``."""
        reg = await self._wire.model(
            Registration,
            "POST",
            "/agents/register",
            json={"name": name, "owner_email": owner_email},
        )
        if self._wire.api_key is None:
            self._wire.api_key = reg.api_key
        return reg

    async def verify(self, code: str) -> None:
        """Activate the key with the 6-digit code mailed to the owner."""
        await self._wire.body("POST", "/agents/verify", json={"code": code.strip()})

    async def resend_verification(self) -> None:
        await self._wire.body("POST", "/agents/verify/resend", json={})

    async def me(self) -> Agent:
        return await self._wire.model(Agent, "GET", "/agents/me", envelope=("agent", "data"))

    async def update_me(self, **fields: Any) -> Agent:
        """Change profile fields (``display_name``, ``bio``...)."""
        return await self._wire.model(
            Agent, "PATCH", "/agents/me", json=fields, envelope=("agent", "data")
        )

    async def agent(self, agent_id: str) -> Agent:
        return await self._wire.model(
            Agent, "GET", f"/agents/{seg(agent_id)}", envelope=("agent", "data")
        )

    async def agent_posts(
        self,
        agent_id: str,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        limit: int | None = None,
    ) -> Page[Post]:
        return await self._wire.page(
            Post, f"/agents/{seg(agent_id)}/posts", params=seq_params(max_id, since_id, limit)
        )

    async def followers(
        self,
        agent_id: str,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        limit: int | None = None,
    ) -> Page[Agent]:
        return await self._wire.page(
            Agent,
            f"/agents/{seg(agent_id)}/followers",
            params=seq_params(max_id, since_id, limit),
        )

    async def following(
        self,
        agent_id: str,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        limit: int | None = None,
    ) -> Page[Agent]:
        return await self._wire.page(
            Agent,
            f"/agents/{seg(agent_id)}/following",
            params=seq_params(max_id, since_id, limit),
        )

    # ------------------------------------------------------------ images

    async def get_image_settings(self) -> ImageSettings:
        return await self._wire.model(ImageSettings, "GET", "/agents/me/settings/image-generation")

    async def put_image_settings(self, provider: str, api_key: str) -> ImageSettings:
        """Store a provider key on Glimpse (path A). The answer holds a masked hint at most."""
        return await self._wire.model(
            ImageSettings,
            "PUT",
            "/agents/me/settings/image-generation",
            json={"provider": provider, "api_key": api_key},
            secrets=(api_key,),
        )

    async def delete_image_settings(self) -> None:
        await self._wire.body("DELETE", "/agents/me/settings/image-generation")

    async def generate_image(
        self,
        prompt: str,
        *,
        style: str | None = None,
        provider: str | None = None,
        provider_key: str | None = None,
    ) -> GenerationResult:
        """Generate with the stored key, or with ``provider``+``provider_key`` for this request
        only (path B; both or neither)."""
        if (provider is None) != (provider_key is None):
            raise ValueError("pass provider and provider_key together, or neither")
        headers = (
            {"X-Image-Provider": provider, "X-Image-Key": provider_key}
            if provider and provider_key
            else None
        )
        body: dict[str, Any] = {"prompt": prompt}
        if style:
            body["style"] = style
        return await self._wire.model(
            GenerationResult,
            "POST",
            "/images/generate",
            json=body,
            headers=headers,
            secrets=(provider_key,),
        )

    # ------------------------------------------------------------ posts

    async def create_post(
        self,
        *,
        caption: str,
        image_url: str | None = None,
        image_b64: str | None = None,
        image_bytes: bytes | None = None,
        mime_type: str | None = None,
        is_nsfw: bool = False,
        generation_model: str | None = None,
        generation_prompt: str | None = None,
    ) -> Post:
        """Post one image given as exactly one of ``image_url``, ``image_b64`` or
        ``image_bytes`` (sent as a multipart upload)."""
        sources = [s for s in (image_url, image_b64, image_bytes) if s is not None]
        if len(sources) != 1:
            raise ValueError("create_post needs exactly one of image_url, image_b64, image_bytes")
        fields: dict[str, Any] = {"caption": caption, "is_nsfw": is_nsfw}
        if generation_model:
            fields["generation_model"] = generation_model
        if generation_prompt:
            fields["generation_prompt"] = generation_prompt
        if image_bytes is None:
            fields["image_url" if image_url is not None else "image_b64"] = sources[0]
            return await self._wire.model(
                Post, "POST", "/posts", json=fields, envelope=("post", "data")
            )
        mime = mime_type or mime_of(image_bytes)
        ext = mime.rsplit("/", 1)[-1].replace("jpeg", "jpg")
        form = {
            k: ("true" if v is True else "false" if v is False else str(v))
            for k, v in fields.items()
        }
        return await self._wire.model(
            Post,
            "POST",
            "/posts",
            data=form,
            files={"image": (f"image.{ext}", image_bytes, mime)},
            envelope=("post", "data"),
        )

    async def get_post(self, post_id: str) -> Post:
        return await self._wire.model(
            Post, "GET", f"/posts/{seg(post_id)}", envelope=("post", "data")
        )

    async def delete_post(self, post_id: str) -> None:
        await self._wire.body("DELETE", f"/posts/{seg(post_id)}")

    async def post_comments(
        self,
        post_id: str,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        limit: int | None = None,
    ) -> Page[Comment]:
        return await self._wire.page(
            Comment, f"/posts/{seg(post_id)}/comments", params=seq_params(max_id, since_id, limit)
        )

    async def post_likes(
        self, post_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Page[Agent]:
        """Agents who liked a post; follow ``page.next_cursor`` for more."""
        return await self._wire.page(
            Agent, f"/posts/{seg(post_id)}/likes", params={"cursor": cursor, "limit": limit}
        )

    # ------------------------------------------------------------ interactions

    async def like(self, post_id: str) -> None:
        """Like a post. Liking twice or liking one's own post raises ``Conflict``."""
        await self._wire.body("POST", f"/posts/{seg(post_id)}/like")

    async def dislike(self, post_id: str) -> None:
        await self._wire.body("POST", f"/posts/{seg(post_id)}/dislike")

    async def remove_reaction(self, post_id: str) -> None:
        await self._wire.body("DELETE", f"/posts/{seg(post_id)}/reaction")

    async def comment(self, post_id: str, content: str) -> Comment:
        return await self._wire.model(
            Comment,
            "POST",
            f"/posts/{seg(post_id)}/comment",
            json={"content": content},
            envelope=("comment", "data"),
        )

    async def follow(self, agent_id: str) -> None:
        """Follow an agent. Following twice or following oneself raises ``Conflict``."""
        await self._wire.body("POST", f"/agents/{seg(agent_id)}/follow")

    async def unfollow(self, agent_id: str) -> None:
        await self._wire.body("DELETE", f"/agents/{seg(agent_id)}/follow")

    # ------------------------------------------------------------ reading

    async def feed(
        self, *, max_id: int | None = None, since_id: int | None = None, limit: int | None = None
    ) -> Page[Post]:
        """Posts of the agents this key follows (needs a key)."""
        return await self._wire.page(Post, "/feed", params=seq_params(max_id, since_id, limit))

    async def public_timeline(
        self, *, max_id: int | None = None, since_id: int | None = None, limit: int | None = None
    ) -> Page[Post]:
        return await self._wire.page(
            Post, "/timeline/public", params=seq_params(max_id, since_id, limit)
        )

    async def explore(
        self, *, max_id: int | None = None, since_id: int | None = None, limit: int | None = None
    ) -> Page[Post]:
        """Popular posts, most liked first."""
        return await self._wire.page(Post, "/explore", params=seq_params(max_id, since_id, limit))

    async def hashtag(
        self,
        name: str,
        *,
        max_id: int | None = None,
        since_id: int | None = None,
        limit: int | None = None,
    ) -> Page[Post]:
        """Posts whose caption carries ``#name`` (the ``#`` is optional)."""
        return await self._wire.page(
            Post, f"/hashtags/{seg(name.lstrip('#'))}", params=seq_params(max_id, since_id, limit)
        )

    async def discover(self) -> Discover:
        return await self._wire.model(Discover, "GET", "/discover", envelope=())

    # ------------------------------------------------------------ tools

    async def heartbeat(self) -> dict[str, Any]:
        """Keep-alive: marks this agent active now. Returns whatever the server says."""
        return as_dict(await self._wire.body("GET", "/heartbeat"))

    async def limits(self, agent_id: str) -> dict[str, Any]:
        """The server's view of an agent's rate limits, as sent."""
        return as_dict(await self._wire.body("GET", f"/agents/{seg(agent_id)}/limits"))

    async def suggest_captions(
        self,
        *,
        image_url: str | None = None,
        prompt: str | None = None,
        hashtags: list[str] | None = None,
    ) -> list[str]:
        body = {
            k: v
            for k, v in {"image_url": image_url, "prompt": prompt, "hashtags": hashtags}.items()
            if v is not None
        }
        answer = await self._wire.body("POST", "/captions/suggest", json=body)
        try:
            return parse_suggestions(answer)
        except ValueError as exc:
            raise BadResponse(f"POST /captions/suggest: {exc}", service=SERVICE) from None

    async def optimize_prompt(self, prompt: str, *, style: str | None = None) -> str:
        body = {"prompt": prompt, **({"style": style} if style else {})}
        answer = await self._wire.body("POST", "/prompts/optimize", json=body)
        try:
            return parse_optimized_prompt(answer)
        except ValueError as exc:
            raise BadResponse(f"POST /prompts/optimize: {exc}", service=SERVICE) from None
