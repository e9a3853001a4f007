"""Living maps in headless Chromium (issue 14): reopen a saved run, rename, merge, undo, add documents,
and the hierarchy view; screenshots under ``tests/artifacts/`` (living_*.png). Marked ``browser``.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from test_browser import ARTIFACTS, LONG, N_DOCS, _no_exception_shown, _settle, page, server  # noqa: F401

pytestmark = pytest.mark.browser
SAMPLE = ARTIFACTS.parent.parent / "sample_data" / "banking77.csv"


def _edits_said(page, count: int) -> None:  # noqa: F811
    page.get_by_text(re.compile(rf"^{count} edit\(s\)")).wait_for(timeout=LONG)
    _settle(page)
    _no_exception_shown(page)


def test_reopen_rename_merge_undo_and_add_documents(server, page, tmp_path):  # noqa: F811
    url, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(url)
    page.get_by_text(f"Loaded {N_DOCS} of {N_DOCS} rows").wait_for(timeout=LONG)
    page.get_by_label("Instructions, one per line").fill("What does the customer need?")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(re.compile(r"^Done in ")).wait_for(timeout=LONG)
    _settle(page)

    page.goto(url)  # a new session: reopen the saved run
    page.get_by_text(f"Loaded {N_DOCS} of {N_DOCS} rows").wait_for(timeout=LONG)
    page.get_by_text(re.compile(r"^Earlier runs on this corpus \(1\)")).click()
    page.get_by_role("button", name="Reopen this run").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=LONG)
    _settle(page)
    page.get_by_text("Edit clusters", exact=True).click()
    page.get_by_role("button", name="Undo").wait_for(timeout=LONG)
    _settle(page)

    page.get_by_label("New name").fill("Renamed in the browser")
    page.get_by_role("button", name="Rename", exact=True).click()
    _edits_said(page, 1)

    page.get_by_role("tab", name="Merge").click()
    merge = page.get_by_role("combobox", name=re.compile("Clusters to merge"))
    merge.click()
    page.get_by_role("listbox").get_by_role("option").first.wait_for(timeout=LONG)
    offered = [name for name in page.get_by_role("listbox").get_by_role("option").all_inner_texts()
               if not name.lower().startswith("select all")]  # the widget's own "select all" entry is no cluster
    assert len(offered) >= 3, f"{offered}: merging two clusters must leave others"
    for name in offered[:2]:
        if not page.get_by_role("listbox").is_visible():
            merge.click()
        page.get_by_role("listbox").get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Merge", exact=True).click()
    _edits_said(page, 2)
    page.get_by_text(re.compile(r"^2 edit\(s\): rename .*; merge -?\d+, -?\d+$")).wait_for(timeout=LONG)  # two, not all
    page.screenshot(path=str(ARTIFACTS / "living_edit.png"), full_page=True)

    page.get_by_role("button", name="Undo").click()
    _edits_said(page, 1)
    page.get_by_text(re.compile(r"1 edit\(s\): rename")).wait_for(timeout=LONG)

    new = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False).iloc[5::60].head(40)
    path = tmp_path / "next_week.csv"
    new.to_csv(path, index=False)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(path))
    page.get_by_role("button", name="Place them").click()
    page.get_by_text("40 new documents placed").wait_for(timeout=LONG)
    _settle(page)
    _no_exception_shown(page)
    page.locator(".js-plotly-plot").last.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "living_added.png"), full_page=True)

    page.get_by_text("Hierarchy", exact=True).click()
    page.get_by_text("Merge suggestions").wait_for(timeout=LONG)
    page.locator(".js-plotly-plot").first.wait_for(timeout=LONG)
    _settle(page)
    _no_exception_shown(page)
    page.screenshot(path=str(ARTIFACTS / "living_hierarchy.png"), full_page=True)
