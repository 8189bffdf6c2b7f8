"""Manual grading tried in a real browser: headless Chromium on nbgrader's formgrader.

A Jupyter server on 127.0.0.1 (a free port, a token) serves a course of two collected and autograded
submissions. The browser opens the reference submission's grading page, checks that the student's
own figures are shown, enters a score for B.1 as a grader would, and the score must land in the
gradebook. Screenshots go to build/ (look at them). Skipped where Chromium or Selenium is absent.
"""

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from autograder.authoring import manual  # noqa: E402
from test_manual import ASSIGNMENT, build_submissions, images_in  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "build"
B1_SCORE = 21        # what the "grader" types into B.1's score box

selenium = pytest.importorskip("selenium", reason="Selenium is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                                reason="Chromium is absent: apt-get install chromium chromium-driver (.ci/run does)")


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def server_answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def manual_score(course, student, grade_id):
    from nbgrader.api import Gradebook
    with Gradebook(manual._config(course).CourseDirectory.db_url) as gb:
        return gb.find_grade(grade_id, Path(ASSIGNMENT.notebook).stem, ASSIGNMENT.name, student).manual_score


def chromium(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def test_formgrader_shows_figures_and_saves_a_score(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from nbgrader.api import Gradebook

    submissions = build_submissions(tmp_path / "submissions", names=("blank", "reference"))
    course = tmp_path / "course"
    manual.collect(ASSIGNMENT, submissions, course)
    assert manual.autograde(ASSIGNMENT, course) == {"blank": "", "reference": ""}
    expected_images = images_in(course / "autograded" / "reference" / ASSIGNMENT.name / ASSIGNMENT.notebook)
    assert expected_images > 0
    with Gradebook(manual._config(course).CourseDirectory.db_url) as gb:
        submission_id = gb.find_submission_notebook(Path(ASSIGNMENT.notebook).stem, ASSIGNMENT.name,
                                                    "reference").id

    log = open(tmp_path / "server.log", "wb")
    server, url, token = manual.start_formgrader(ASSIGNMENT, course, stdout=log, stderr=subprocess.STDOUT)
    profile = Path(tempfile.mkdtemp(prefix="kit-chromium-"))
    browser = None
    try:
        wait_for(lambda: server.poll() is not None or server_answers(f"{url}/api/status?token={token}"), 60,
                 "the Jupyter server")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        browser = chromium(profile)
        # The address `manual formgrader` prints: the token logs the browser in (a cookie), then
        # formgrader's pages and the API calls they make are served.
        browser.get(f"{url}/formgrader?token={token}")
        wait_for(lambda: browser.current_url.endswith("/formgrader/manage_assignments"), 30, "formgrader")
        browser.get(f"{url}/formgrader/submissions/{submission_id}/")

        # The student's own figures (embedded PNGs of the notebook's outputs) are on the page, loaded.
        images = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']"), 30,
                          "the notebook's figures")
        assert len(images) == expected_images
        loaded = browser.execute_script(
            "return Array.from(document.querySelectorAll(\"img[src^='data:image/png']\"))"
            ".filter(i => i.complete && i.naturalWidth > 100).length")
        assert loaded == expected_images
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", images[0])
        SCREENSHOTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "formgrader_figure.png"))

        # Grade B.1 as a grader does: type the score, leave the box; formgrader saves it (once the
        # page has loaded the grades it shows: before that, its boxes are not wired to the gradebook).
        wait_for(lambda: browser.execute_script("return window.jQuery !== undefined && jQuery.active === 0 "
                                                "&& document.readyState === 'complete'"), 30, "formgrader's scripts")
        box = browser.find_element(By.ID, ASSIGNMENT.task("B.1").id.replace(".", "") + "-manual")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.clear()
        box.send_keys(str(B1_SCORE), Keys.TAB)
        wait_for(lambda: manual_score(course, "reference", "B1-manual") == B1_SCORE, 20,
                 "the B.1 score in the gradebook")
        browser.save_screenshot(str(SCREENSHOTS / "formgrader_b1.png"))
        merged = manual.manual_scores(ASSIGNMENT, course)
        assert merged["reference"]["B.1"]["manual"] == B1_SCORE
        assert not merged["reference"]["B.1"]["needs_grading"]
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
