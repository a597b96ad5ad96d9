"""Check, deploy, roll back and diff the Asterisk configuration of the 800 line.

``cti dialplan check [PATH]``   asterisklint + cti's cross-checks (:mod:`.checks`), file:line findings
``cti dialplan diff``           what a deploy would change (unified diff)
``cti dialplan deploy``         check, write atomically, reload what changed, verify, roll back on failure
``cti dialplan rollback``       restore the version the last deploy replaced

Modules: ``conf`` (Asterisk's config format, includes and templates), ``tree`` (which files,
in a checkout or in /etc/asterisk), ``model`` (the dialplan as data), ``walker`` (runs a
call through the dialplan), ``lint`` (asterisklint in-process), ``checks``, ``reload``
(AMI deploy user or ``asterisk -rx``), ``deploy`` (files, versions, reload, verify),
``history`` (the ``dialplan_deploys`` table), ``cli``.
"""
