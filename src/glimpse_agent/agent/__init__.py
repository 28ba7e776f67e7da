"""Executes the planner's decisions against the services, recording everything in the ledger.

One post:   idea -> image prompt -> image (router) -> caption (chain + safety) -> intent ->
            create_post -> settle.
One session: fetch feed/timeline/explore/hashtags + own posts' comments + followers -> planner ->
            for each decision: budget check -> intent -> call -> settle/record.

Every write to Glimpse is preceded by a durable write-ahead intent, so a crash between "the POST
succeeded" and "we recorded it" is found at the next start (``reconcile``) and never produces a
second post. ``dry_run`` turns every write into a log line and nothing else: posts, likes,
comments, follows, the heartbeat, and image generation itself (Glimpse's generator would PUT the
BYOK settings and spend the day's generation quota; the others cost money). A dry run marks no
slot done in the ledger, so a real run later the same day still does the whole plan.

``Agent`` (``core``) is put together from parts with one job each, all handed one
``AgentContext`` (``context``): ``DayPlanner`` (``days``), ``SlotRunner`` (``slots``),
``Poster`` (``posting``), ``Engager`` (``engaging``), ``Reconciler`` (``reconcile``),
``Quota`` (``quota``); ``settle`` holds the atomic ledger writes that finish an action.

May import the rooms it drives: planner, ledger, glimpse, imaging, writing, config, and the
shared modules (clock, errors, logs, persona). Imported by ``run`` and the commands.
"""

from glimpse_agent.agent.core import Agent
from glimpse_agent.agent.outcome import Outcome
from glimpse_agent.agent.posting import with_attribution

__all__ = ["Agent", "Outcome", "with_attribution"]
