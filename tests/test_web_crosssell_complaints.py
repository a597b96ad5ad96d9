"""No cross-sell is offered to a caller with an open complaint on the complaints line
(``http.crosssell_skip_complaints``, on by default); the same caller elsewhere still gets it."""

from __future__ import annotations

from cti.config import load_settings
from cti.web.crosssell import quiet_for_complaint
from test_web_support import Web, next_of, web  # noqa: F401  (fixture)


async def test_the_complaint_caller_on_the_complaints_line_gets_no_cross_sell(web: Web):
    ws = await web.ws(await web.login("alice"))
    web.ring("PJSIP/1001", "cs.1", web.customer_id, queue="complaints")
    pop = await next_of(ws, "screen_pop")
    assert pop["open_complaints"] and pop["suggestion"] is None
    # the same customer (an open complaint, a new microwave) calling the appliances line: offered
    web.ring("PJSIP/1001", "cs.2", web.customer_id, queue="appliances")
    pop = await next_of(ws, "screen_pop")
    assert pop["suggestion"]["id"] == "rice-cooker-for-new-microwave"
    web.daemon.web.hub.quiet_complaints = False  # http.crosssell_skip_complaints = false
    web.ring("PJSIP/1001", "cs.3", web.customer_id, queue="complaints")
    pop = await next_of(ws, "screen_pop")
    assert pop["suggestion"]["id"] == "rice-cooker-for-new-microwave"


def test_the_setting_defaults_on_and_can_be_switched_off():
    assert load_settings(None, env={}).http.crosssell_skip_complaints is True
    off = load_settings(None, env={"CTI_HTTP_CROSSSELL_SKIP_COMPLAINTS": "false"})
    assert off.http.crosssell_skip_complaints is False
    tickets = [{"category": "complaint"}]
    assert quiet_for_complaint("complaints", tickets) and not quiet_for_complaint("complaints", tickets, False)
    assert not quiet_for_complaint("mobile", tickets) and not quiet_for_complaint("complaints", [])
