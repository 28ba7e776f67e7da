from __future__ import annotations

from glimpse_agent.cli import main

raise SystemExit(main())
