"""cti.stats: reports and staffing from call history (pure functions; the CLI and loaders wrap them).

- :mod:`cti.stats.erlang`: Erlang B/C (M/M/n), stable recurrence; ``agents_required`` for a service level.
- :mod:`cti.stats.erlang_a`: Erlang A (M/M/n+M) with callers' patience: answer rate, abandonment, service level.
- :mod:`cti.stats.forecast`: offered calls per interval from the same weekday of recent weeks, with uplifts.
- :mod:`cti.stats.shifts`: 12/8/6-hour shifts covering a requirement at least paid hours (integer program).
- :mod:`cti.stats.staffing`: both models per interval, the shift plan, and what the plan delivers.
- :mod:`cti.stats.reports`: offered/answered/abandoned, answer rate, service level, AHT, occupancy, peaks, CSV.
- :mod:`cti.stats.charts`: server-rendered SVG (requirement vs coverage; offered vs answered).
- :mod:`cti.stats.profile`: the seed's 800-line day (shared with the simulated PBX's default traffic).

Every modelled number names its model (``model = "erlang_c"`` or ``"erlang_a"``; ``[erlang_c]``/``[erlang_a]``
on the command line), because the seed's 80% standard is an answer rate, which only Erlang A can give.
"""
