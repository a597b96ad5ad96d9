"""Who is credited for a lead, pure and configurable.

Head office calling a dealer's customer never takes the dealer's sale: the dealer of the
customer always gets ``dealer_share``; the agent or expert who found the need gets
``finder_share`` (``expert_share`` when the finder is an expert); the call center keeps the
rest. A customer without a dealer: the dealer share goes to the call center. Shares of one
lead always add up to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

CALL_CENTER = "call_center"


@dataclass(frozen=True)
class CreditRules:
    dealer_share: float = 0.6
    finder_share: float = 0.2
    expert_share: float = 0.3

    def __post_init__(self) -> None:
        for name in ("dealer_share", "finder_share", "expert_share"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name}: {v} is not between 0 and 1")
        if self.dealer_share + max(self.finder_share, self.expert_share) > 1 + 1e-9:
            raise ValueError("dealer_share + finder/expert share exceed 1")


@dataclass(frozen=True)
class Credit:
    party_kind: str  # dealer, agent, call_center
    party: str
    share: float
    rule: str


def credit_lead(dealer: str | None, finder: str | None, finder_is_expert: bool,
                rules: CreditRules = CreditRules()) -> list[Credit]:
    """The credits of one lead (shares sum to 1; zero shares are left out)."""
    credits: list[Credit] = []
    rest = 1.0
    if dealer:
        credits.append(Credit("dealer", dealer, rules.dealer_share, "customer's dealer"))
        rest -= rules.dealer_share
    if finder:
        share = rules.expert_share if finder_is_expert else rules.finder_share
        credits.append(Credit("agent", finder, share, "expert who found it" if finder_is_expert else "agent who found it"))
        rest -= share
    credits.append(Credit("call_center", CALL_CENTER, round(rest, 9), "call center" if dealer else "call center (no dealer)"))
    return [c for c in credits if c.share > 1e-12]


def rules_from_mapping(data: Mapping[str, object]) -> CreditRules:
    return CreditRules(**{k: float(v) for k, v in data.items()  # type: ignore[arg-type]
                          if k in ("dealer_share", "finder_share", "expert_share")})
