"""``cti demo``: the whole product on one machine, no Asterisk needed.

- ``data``: the demo world as pure data (customers in Chinese and English, products of the three
  lines, VIPs, open complaints; the agent roster sized by Erlang C for the traffic);
- ``org``: the org chart (product-line owners, their managers, a director) complaints escalate along;
- ``kb``: knowledge-base articles (warranty, installation, error codes; zh and en);
- ``seed``: writes it through the customers/agents/tickets/kb packages, dated on the simulated clock;
- ``simclock``: where the simulated day starts (09:00 in the center's zone) and resumes after a restart;
- ``world``: settings of the daemon and the simulated PBX, the shift (QueueAdd), the runner (the daemon
  runs on the PBX's simulated clock);
- ``cli``: the ``cti demo`` command.
"""
