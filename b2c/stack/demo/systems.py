"""The simulated systems of `b2c up --demo`: ERP, PIM and CRM, each on its own port. Data only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoSystem:
    slug: str
    name: str
    type: str
    port_variable: str
    default_port: int
    description: str

    @property
    def token(self) -> str:
        """The bearer token the simulated system accepts (not a secret: it guards nothing)."""
        return f"demo-{self.slug}-token"


SYSTEMS = (
    DemoSystem("erp", "enventa Trade ERP", "ERP", "B2X_DEMO_ERP_PORT", 18081,
               "Articles, prices and stock; slow every quarter hour, a backup window 14:00-16:00 with timeouts."),
    DemoSystem("pim", "PIM System", "PIM", "B2X_DEMO_PIM_PORT", 18082,
               "Product information; bursts of 503 Service Unavailable every 20 minutes."),
    DemoSystem("crm", "CRM Integration", "CRM", "B2X_DEMO_CRM_PORT", 18083,
               "Customers and orders; tokens expire now and then, CPU and memory run above their thresholds."),
)  # fmt: skip
