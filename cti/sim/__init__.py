"""A simulated Asterisk 22 for cti: AMI server + FastAGI caller + app_queue + agents + traffic.

It speaks the dialect of ``shared/asterisk-captures`` (field names and order, list responses,
error texts, CRLF), so cti can be run, demonstrated and tested end to end without an Asterisk.

Public API::

    from cti.sim.config import SimConfig, AgentConfig
    from cti.sim.pbx import SimPbx

    pbx = SimPbx(SimConfig(ami_port=0, agi_host="127.0.0.1", agi_port=4573, speed=20, seed=1))
    await pbx.start()                      # AMI listening on pbx.ami_port
    call = pbx.place_call("13800138000", "Wang Wei", patience=120, talk_time=30)
    await call.wait("queued")              # started, up, agi_done, queued, ringing, answered, finished
    await call.wait("finished")
    call.outcome, call.queue, call.priority, call.agent, call.agi_status, call.variables
    call.hangup()                          # the caller hangs up now (abandon when waiting)
    await pbx.stop()

Modules: ``ami_format`` (captured templates, rendering), ``ami_server`` (sessions, login,
permissions), ``actions`` / ``originate`` (AMI actions), ``queue`` (pure app_queue model),
``pbx`` (engine: dialplan, queue dispatch, agents), ``agi_client`` (FastAGI caller side on
``cti.agi.peer``), ``traffic`` (Poisson day), ``clock`` (fast simulated clock), ``config``
(defaults + agents file), ``testing`` (raw AMI client, scripted FastAGI server), ``cli``
(``cti sim``).
"""
