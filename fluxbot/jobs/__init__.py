"""The job core: a job's life from command to delivered reply, in small parts behind one facade (`Jobs`).

- `lifecycle`: the states, the table of allowed transitions and the domain types;
- `requests`: what a member may ask for (prompts, models, sizes, options, images);
- `service`: the facade the cogs call (`Jobs`), admission, and the background loop;
- `dispatch`: claim and submit; `tracker`: follow tasks (lookups, callbacks, timeouts);
- `finishing`: the one way into a final state; `replies` and `cards`: showing progress and outcomes;
- `durations`: how long jobs usually take; `persist`: writes retried until the database takes them.
"""

from __future__ import annotations
