"""The planner's rooms: pure decisions, no I/O, no clock.

``glimpse_agent.planner`` is the public face and re-exports what callers use:

- ``window``     — active hours as UTC instants (DST rule lives here), local midnight;
- ``dayplan``    — the day's post and engagement slots, deterministic per (persona, day);
- ``ideas``      — the next post idea (topic x angle rotation) and repeat detection;
- ``engagement`` — which posts to like/comment, whom to follow, which comments to answer.
"""
