"""``cti demo``: the whole product on one machine, no Asterisk needed.

- ``data``: the demo world as pure data (customers in Chinese and English, products of the three
  lines, VIPs, open complaints; the agent roster sized by Erlang C for the traffic);
- ``seed``: writes it through the customers/agents/tickets packages;
- ``world``: settings of the daemon and the simulated PBX, the shift (QueueAdd), the runner;
- ``cli``: the ``cti demo`` command.
"""
