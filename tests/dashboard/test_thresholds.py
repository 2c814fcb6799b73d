"""Thresholds in the resource monitor (issue 11 screen 7): an operator edits them through `updateThresholds` and
they are shown after a reload; a viewer sees the editor disabled with the reason and the API refuses them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.dashboard.conftest import Dashboard, axe_violations

pytestmark = pytest.mark.e2e
OPEN = 15_000
THRESHOLDS = '{ resources(services: ["crm"]) { thresholds { cpuPercent cpuSustainedSeconds queueDepth } } }'
UPDATE = (
    'mutation($t: ThresholdsInput!) { updateThresholds(service: "crm", thresholds: $t) '
    "{ thresholds { cpuSustainedSeconds queueDepth } } }"
)


async def _no_violations(page: Any, context: str) -> None:
    violations = await axe_violations(page, context)
    assert violations == [], violations


async def _thresholds(dashboard: Dashboard) -> dict[str, Any]:
    """The CRM's thresholds, once the probes sampled it (a fresh stack has no figures for a few seconds)."""
    for _ in range(60):
        resources = (await dashboard.graphql(dashboard.operator, THRESHOLDS))["data"]["resources"]
        if resources and resources[0]["thresholds"]:
            thresholds: dict[str, Any] = resources[0]["thresholds"]
            return thresholds
        await asyncio.sleep(0.5)
    raise AssertionError("the probes never sampled the CRM's resources")


async def _open(open_page: Any, key: str) -> Any:
    page = await open_page(key, "/services/crm/resources")
    await page.wait_for_selector("section[data-ready=true] [data-testid=thresholds]", timeout=OPEN)
    return page


async def test_thresholds_edited_by_an_operator_are_saved_and_shown_after_reload_and_refused_for_a_viewer(
    open_page: Any, dashboard: Dashboard
) -> None:
    before = await _thresholds(dashboard)
    queue = before["queueDepth"] + 37
    sustained = before["cpuSustainedSeconds"] + 15
    try:
        page = await _open(open_page, dashboard.operator)
        box = page.get_by_test_id("thresholds")
        await box.get_by_role("button", name="Edit thresholds").focus()
        await page.keyboard.press("Enter")
        await box.get_by_label("Queue above (items)").fill(str(queue))
        await box.get_by_label("for at least (s)").fill(str(sustained))
        await _no_violations(page, "thresholds editor")
        # A bad value is refused in the form, naming the field; nothing is sent.
        await box.get_by_label("CPU above (%)").fill("250")
        await box.get_by_role("button", name="Save thresholds").click()
        assert await box.get_by_label("CPU above (%)").evaluate("e => !e.validity.valid")
        await box.get_by_label("CPU above (%)").fill(str(before["cpuPercent"]))
        await page.keyboard.press("Enter")
        await box.get_by_role("status").filter(has_text="Thresholds saved.").wait_for(timeout=OPEN)
        await _no_violations(page, "thresholds saved")

        shown = page.get_by_test_id("thresholds")
        assert re.sub(r"\D", "", await shown.get_by_test_id("limit-queueDepth").text_content()) == str(queue)
        for _ in range(60):  # the resource figures carry the new limits from the probes' next sample on
            after = await _thresholds(dashboard)
            if (after["queueDepth"], after["cpuSustainedSeconds"]) == (queue, sustained):
                break
            await asyncio.sleep(0.5)
        assert (after["queueDepth"], after["cpuSustainedSeconds"]) == (queue, sustained)
        assert after["cpuPercent"] == before["cpuPercent"]
        await page.reload()
        await page.wait_for_selector("section[data-ready=true] [data-testid=thresholds]", timeout=OPEN)
        shown = page.get_by_test_id("thresholds")
        assert re.sub(r"\D", "", await shown.get_by_test_id("limit-queueDepth").text_content()) == str(queue)
        assert await shown.get_by_test_id("limit-cpuSustainedSeconds").text_content() == f"{sustained} s"
        assert page.watch.errors == [], page.watch.errors

        viewer = await _open(open_page, dashboard.viewer)
        box = viewer.get_by_test_id("thresholds")
        edit = box.get_by_role("button", name="Edit thresholds")
        assert await edit.get_attribute("aria-disabled") == "true"
        reason = await viewer.locator(f"#{await edit.get_attribute('aria-describedby')}").text_content()
        assert "Needs the operator role" in reason
        await edit.click(force=True)
        assert await box.locator("input").count() == 0
        await _no_violations(viewer, "thresholds for a viewer")
        refused = await dashboard.graphql(dashboard.viewer, UPDATE, {"t": {"queueDepth": 1}})
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await _thresholds(dashboard))["queueDepth"] == queue
        assert viewer.watch.errors == [], viewer.watch.errors
    finally:
        await dashboard.graphql(
            dashboard.operator,
            UPDATE,
            {"t": {"queueDepth": before["queueDepth"], "cpuSustainedSeconds": before["cpuSustainedSeconds"]}},
        )
