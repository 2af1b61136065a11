"""The review UI in a real headless Chromium (Debian's chromium + chromium-driver, Selenium)
against uvicorn on 127.0.0.1: open sample notes, accept / reject / replace / add codes with
the mouse and the keyboard, move through a work list, then check SQLite and the exports."""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

import httpx  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from medcode_nlp.serve import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs Debian's chromium and chromium-driver "
           "(apt-get install -y chromium chromium-driver)",
)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(default_coder, tmp_path_factory):
    db = tmp_path_factory.mktemp("serve_ui") / "reviews.sqlite3"
    app = create_app(coder_factory=lambda: default_coder, db_path=db)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "db": db}
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000", "--no-first-run"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def wait(driver, seconds: float = 20) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def code_items(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#codes li.code")


def press(driver, keys: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(keys)


def status_says(driver, text: str):
    return wait(driver).until(EC.text_to_be_present_in_element((By.ID, "status"), text))


def results_for(driver, query: str) -> None:
    """Wait until the search list shows the results of `query` (not of an earlier search)."""
    wait(driver).until(lambda d: d.find_element(By.ID, "search-results")
                       .get_attribute("data-query") == query)


def test_review_a_work_list_in_chromium(server, browser, tmp_path):
    worklist = tmp_path / "worklist.jsonl"
    notes = [("discharge_summary", (EXAMPLES / "discharge_summary.txt").read_text()),
             ("office_visit", (EXAMPLES / "office_visit.txt").read_text())]
    worklist.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in notes))

    browser.get(server["url"] + "/")
    browser.find_element(By.ID, "reviewer").send_keys("ui-tester")
    browser.find_element(By.ID, "file-input").send_keys(str(worklist))
    wait(browser).until(lambda d: len(code_items(d)) >= 3)
    assert browser.find_element(By.ID, "note-position").text == "note 1 of 2"
    assert browser.find_element(By.ID, "note-title").text == "discharge_summary"

    # The note shows its entities by label, with assertion and section.
    marks = browser.find_elements(By.CSS_SELECTOR, "#note mark.ent")
    assert marks and {m.get_attribute("data-label") for m in marks} >= {"PROBLEM"}
    assert all(m.get_attribute("data-assertion") for m in marks)
    assert all(m.get_attribute("title").count(" · ") == 2 for m in marks)
    note_text = browser.find_element(By.ID, "note").text
    assert "DISCHARGE SUMMARY" in note_text

    items = code_items(browser)
    first, second, third = (
        (i.get_attribute("data-system"), i.get_attribute("data-code")) for i in items[:3])
    assert items[0].find_elements(By.CSS_SELECTOR, ".bar .fill")
    assert items[0].find_element(By.CSS_SELECTOR, ".badge").text in ("billable", "not billable")

    # Clicking a code highlights its evidence in the note.
    items[1].click()
    evidence = browser.find_elements(By.CSS_SELECTOR, "#note .seg.evidence")
    assert evidence and all(e.text for e in evidence)
    assert "selected" in items[1].get_attribute("class")

    # Accept the first code with its button; reject the second with the keyboard (k, r).
    items[0].find_element(By.CSS_SELECTOR, "button.accept").click()
    status_says(browser, f"{first[1]} accepted")
    press(browser, "k")  # accepting moved the selection on; k goes back... to the first
    press(browser, "j")  # ...and j forward to the second
    press(browser, "r")
    status_says(browser, f"{second[1]} rejected")

    # Replace the third code: search the knowledge base and use a different code.
    code_items(browser)[2].find_element(By.CSS_SELECTOR, "button.replace").click()
    dialog = browser.find_element(By.ID, "search-dialog")
    wait(browser).until(lambda d: dialog.is_displayed())
    search = browser.find_element(By.ID, "search-input")
    search.clear()
    search.send_keys("chronic kidney disease stage 3")
    results_for(browser, "chronic kidney disease stage 3")
    wait(browser).until(lambda d: len(d.find_elements(
        By.CSS_SELECTOR, "#search-results li.search-result")) >= 2)
    options = browser.find_elements(By.CSS_SELECTOR, "#search-results li.search-result")
    chosen = next(o for o in options if o.get_attribute("data-code") != third[1])
    replacement = (chosen.get_attribute("data-system"), chosen.get_attribute("data-code"))
    chosen.find_element(By.CSS_SELECTOR, "button.use").click()
    status_says(browser, f"{third[1]} replaced by {replacement[1]}")
    items = code_items(browser)
    assert "decided-accept" in items[0].get_attribute("class")
    assert "decided-reject" in items[1].get_attribute("class")
    assert items[2].find_element(By.CSS_SELECTOR, ".decision").text == (
        f"replaced → {replacement[1]}")

    # Add a missing code with selected note text as its evidence (keyboard: +).
    start = note_text.index("hypoxia")
    browser.execute_script("""
        const [start, end] = arguments;
        const segs = [...document.querySelectorAll('#note .seg')];
        const seg = segs.find(s => +s.dataset.start <= start && end <= +s.dataset.end);
        const node = seg.firstChild, base = +seg.dataset.start;
        const range = document.createRange();
        range.setStart(node, start - base);
        range.setEnd(node, end - base);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.activeElement.blur();
    """, start, start + len("hypoxia"))
    press(browser, "+")
    wait(browser).until(lambda d: dialog.is_displayed())
    assert "hypoxia" in browser.find_element(By.ID, "search-context").text
    results_for(browser, "hypoxia")
    wait(browser).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li.active"))
    added = browser.find_element(By.CSS_SELECTOR, "#search-results li.active")
    added_code = (added.get_attribute("data-system"), added.get_attribute("data-code"))
    browser.find_element(By.ID, "search-input").send_keys(Keys.ENTER)
    status_says(browser, f"{added_code[1]} added")
    assert browser.find_elements(By.CSS_SELECTOR, f'#added li[data-code="{added_code[1]}"]')

    # Next note of the work list (n), then back (p): the decisions are still shown.
    press(browser, "n")
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "note-title"), "office_visit"))
    assert browser.find_element(By.ID, "note-position").text == "note 2 of 2"
    wait(browser).until(lambda d: code_items(d))
    press(browser, "p")
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "note-title"),
                                                         "discharge_summary"))
    wait(browser).until(lambda d: code_items(d) and "decided-accept" in code_items(d)[0]
                        .get_attribute("class"))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

    # SQLite holds one audited row per decision, with versions and evidence.
    with sqlite3.connect(server["db"]) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM decisions ORDER BY id").fetchall()
    assert [r["decision"] for r in rows] == ["accept", "reject", "replace", "add"]
    assert {r["note_id"] for r in rows} == {"discharge_summary"}
    assert {r["reviewer"] for r in rows} == {"ui-tester"}
    assert (rows[0]["suggested_system"], rows[0]["suggested_code"]) == first
    assert (rows[0]["final_system"], rows[0]["final_code"]) == first
    assert (rows[1]["suggested_code"], rows[1]["final_code"]) == (second[1], None)
    assert (rows[2]["suggested_code"], rows[2]["final_code"]) == (third[1], replacement[1])
    assert (rows[3]["suggested_code"], rows[3]["final_code"]) == (None, added_code[1])
    assert json.loads(rows[3]["evidence"]) == [{"start": start, "end": start + 7,
                                                "text": "hypoxia"}]
    assert all(r["created_at"] and r["model_version"] and r["confidence"] is not None
               for r in rows[:3])
    assert all(json.loads(r["code_set_versions"]) for r in rows)

    # The exports hold the reviewed codes.
    with httpx.Client(base_url=server["url"]) as client:
        exported = client.get("/v1/reviews/export", params={"format": "csv"})
        lines = client.get("/v1/reviews/export", params={"format": "jsonl"}).text.splitlines()
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["decision"], r["final_code"]) for r in table] == [
        ("accept", first[1]), ("reject", ""), ("replace", replacement[1]),
        ("add", added_code[1])]
    records = [json.loads(line) for line in lines]
    assert [r["suggested_code"] for r in records] == [first[1], second[1], third[1], None]
