"""Every HTML page the gateway serves is framed by nobody and runs only its own scripts; GraphiQL keeps the
API key out of localStorage. Real gateway under uvicorn, real Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import shutil

from tests.gateway.conftest import Gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


async def test_html_answers_carry_csp_frame_protection_and_nosniff(gw: Gateway) -> None:
    """GraphiQL's page has a Content-Security-Policy without inline scripts, frame-ancestors 'none' and
    X-Frame-Options DENY; every answer, JSON and static files included, says nosniff."""
    page = await gw.http.get(f"{gw.url}/graphql", headers={"accept": "text/html"})
    csp = page.headers["content-security-policy"]
    assert (
        "frame-ancestors 'none'" in csp
        and "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    )
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text  # no inline script: the policy can forbid them
    for response in (
        page,
        await gw.http.get(f"{gw.url}/static/vendor/graphiql.min.css"),
        await gw.query(gw.viewer, "{ viewer { name } }"),
        await gw.http.get(f"{gw.url}/health/live"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff", response.url


async def test_graphiql_works_under_its_policy_and_keeps_the_key_out_of_local_storage(gw: Gateway) -> None:
    """In Chromium the page renders and runs a query with the key from the Headers editor, with no policy
    violation; afterwards localStorage holds no API key."""
    from playwright import async_api as playwright_api

    violations: list[str] = []
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            await page.goto(f"{gw.url}/graphql?query=%7B%20viewer%20%7B%20name%20%7D%20%7D")  # a shared link
            await page.wait_for_selector(".graphiql-container .CodeMirror", timeout=15_000)
            await page.wait_for_load_state("networkidle")  # the schema request (refused without a key) is over
            await page.evaluate(
                """([key]) => {
                    const editors = [...document.querySelectorAll('.CodeMirror')].map(e => e.CodeMirror);
                    editors.find(e => e.getValue().includes('Authorization'))
                        .setValue(JSON.stringify({Authorization: 'Bearer ' + key}));
                }""",
                [gw.viewer],
            )
            async with page.expect_response(lambda r: r.request.method == "POST" and "/graphql" in r.url):
                await page.click(".graphiql-execute-button")
            await page.wait_for_function(
                "() => document.querySelector('.result-window')?.innerText.includes('viewer')", timeout=15_000
            )
            result = await page.inner_text(".result-window")
            stored = await page.evaluate("() => JSON.stringify(Object.assign({}, window.localStorage))")
        finally:
            await browser.close()
    assert '"name": "viewer"' in result
    assert gw.viewer not in stored and "b2x_" not in stored
    assert violations == []
