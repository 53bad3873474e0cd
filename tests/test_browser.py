"""Every tab in a real browser: headless Chromium (Debian's package) driven by Playwright.

Each test opens the page, runs the tab's main action on an example and waits for its result;
one cancels a long inversion and checks that the finished method is still shown. Skipped when
Chromium or Playwright is missing (``.ci/run`` installs both)."""
import shutil

import pytest

from semedit.registry import Registry, load_catalogue
from semedit.settings import PROJECT_ROOT, WEIGHTS_DIR, Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXAMPLES = PROJECT_ROOT / "examples" / "embedded"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")]
playwright_api = pytest.importorskip("playwright.sync_api")
LONG = 180_000  # ms: an optimisation on 2 busy cores


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from semedit.ui import build_demo
    settings = Settings(device="cpu", cache_dir=tmp_path_factory.mktemp("cache"), hub_offline=True,
                        hub_cache_dir=tmp_path_factory.mktemp("hub"), temp_dir=tmp_path_factory.mktemp("sessions"))
    demo = build_demo(Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), settings), settings)
    demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app_url)
    page.get_by_role("tab", name="Inversion comparison").wait_for(timeout=60_000)
    yield page
    page.close()
    assert not errors, f"JavaScript errors: {errors}"


def panel(page, tab: str):
    """Open ``tab`` and return its visible panel."""
    page.get_by_role("tab", name=tab).click()
    return page.get_by_role("tabpanel").filter(has=page.locator(":visible")).last


def block(scope, label: str):
    """The component whose label (Gradio's block label, not a <label for>) reads ``label``."""
    return scope.locator(".block").filter(
        has=scope.page.locator("[data-testid=block-label]", has_text=label)).last


def set_number(scope, label: str, value) -> None:
    box = scope.get_by_label(f"number input for {label}").first
    box.fill(str(value))
    box.press("Enter")


def no_error_toasts(page) -> bool:
    return page.locator(".toast-body.error, [data-testid='toast-body'].error").count() == 0


def test_inversion_tab_inverts_an_example(page):
    tab = panel(page, "Inversion comparison")
    tab.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "portrait_01.png"))
    block(tab, "Target as loaded").locator("img").wait_for(timeout=30_000)
    set_number(tab, "Steps per method", 20)
    tab.get_by_role("button", name="Invert").click()
    tab.get_by_text("Done: 3 methods").wait_for(timeout=LONG)
    for method in ("W optimisation", "W+ optimisation", "ChunkyGAN"):
        assert tab.get_by_text(method).count() > 0
    assert tab.locator("img").count() >= 4 and no_error_toasts(page)


def test_cancel_keeps_the_finished_method(page):
    tab = panel(page, "Inversion comparison")
    tab.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "portrait_02.png"))
    set_number(tab, "Steps per method", 150)  # PTI (pivot, then tuning) still runs long after W
    tab.get_by_label("W+ optimisation").uncheck()
    tab.get_by_label("Pivotal Tuning").check()
    tab.get_by_role("button", name="Invert").click()
    tab.get_by_text("1 of 3 done").wait_for(timeout=LONG)  # W finished, PTI runs
    tab.get_by_role("button", name="Cancel").click()
    tab.get_by_text("finished methods are kept").wait_for(timeout=60_000)
    assert tab.get_by_text("W optimisation").count() > 0
    assert no_error_toasts(page)


def test_cancel_stops_an_inversion_still_waiting_in_the_queue(page, app_url):
    """Another user's inversion holds the one long-job slot; this page's Invert waits behind it,
    and its Cancel stops it at its start: a message, nothing inverted."""
    from gradio_client import Client, handle_file
    other = Client(app_url, verbose=False)
    busy = other.submit("embedded-portraits-64", handle_file(str(EXAMPLES / "portrait_01.png")), ["w+"], 1000, 1.0, 2,
                        "w+", "stlpips-alex", "auto", api_name="/invert")
    try:
        tab = panel(page, "Inversion comparison")
        tab.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "portrait_02.png"))
        tab.get_by_role("button", name="Invert").click()
        page.wait_for_timeout(2000)  # queued behind the other user's run
        assert not busy.done(), "the other inversion ended first: this one never waited"
        tab.get_by_role("button", name="Cancel").click()
    finally:
        other.submit(api_name="/cancel").result(timeout=60)  # bounded: a hung call fails the test, not the run
        busy.result(timeout=120)
    tab.get_by_text("Cancelled before it started").wait_for(timeout=60_000)
    assert no_error_toasts(page)


def test_sliders_tab_loads_a_sample_and_moves_a_slider(page):
    tab = panel(page, "Attribute sliders")
    tab.get_by_role("button", name="Load source").click()
    tab.get_by_text("Source: sample").wait_for(timeout=LONG)
    set_number(tab, "Units (standard deviations of the attribute)", 2)
    tab.get_by_text("identity distance").filter(visible=True).first.wait_for(timeout=60_000)  # measured effects
    assert no_error_toasts(page)
    # before and after are drawn on top of each other, inside the comparison's box
    compare = block(tab, "Before / after")
    # measured once both are drawn: the edited image may still be loading, or be replaced by a newer
    # edit's (an element that never fires "load"), so poll the box's current images, with a bound
    page.wait_for_function("box => { const im = [...box.querySelectorAll('img')].slice(0, 2); "
                           "return im.length == 2 && im.every(i => i.complete && i.naturalHeight > 0); }",
                           arg=compare.element_handle(), timeout=60_000)
    page.wait_for_timeout(300)  # and laid out
    images = compare.locator("img").all()[:2]
    box = compare.bounding_box()
    before, after = (img.bounding_box() for img in images)
    assert abs(before["y"] - after["y"]) < 2 and abs(before["height"] - after["height"]) < 2
    assert before["y"] >= box["y"] - 1 and before["y"] + before["height"] <= box["y"] + box["height"] + 1


def test_segment_editor_runs_chunkygan_and_edits_a_chunk(page):
    tab = panel(page, "ChunkyGAN segment editor")
    tab.get_by_label("an image: run ChunkyGAN here").check()
    tab.locator("input[type=file]").first.set_input_files(str(EXAMPLES / "portrait_04.png"))
    tab.get_by_text("ChunkyGAN settings (for an image)").click()  # open the accordion
    set_number(tab, "Steps (also for the W+ comparison)", 50)
    tab.get_by_role("button", name="Load", exact=True).click()
    tab.get_by_text("Edits: no edits yet").wait_for(timeout=LONG)
    tab.get_by_role("button", name="Apply to the chunk").click()
    tab.get_by_text("Edits: chunk 1:").wait_for(timeout=60_000)
    assert no_error_toasts(page)


def test_hair_tab_transfers_an_example_pair(page):
    tab = panel(page, "Hairstyle transfer")
    block(tab, "Face image").locator("input[type=file]").set_input_files(str(EXAMPLES / "portrait_02.png"))
    block(tab, "Hair image").locator("input[type=file]").set_input_files(str(EXAMPLES / "portrait_01_turned.png"))
    block(tab, "Hair image").get_by_text("portrait_01_turned.png").wait_for(timeout=30_000)
    tab.get_by_role("button", name="Transfer the hair").click()
    tab.get_by_text("result: ").first.wait_for(timeout=LONG)
    assert no_error_toasts(page)


def test_samples_panel_draws_samples(page):
    tab = panel(page, "Samples")
    tab.get_by_role("button", name="Sample", exact=True).click()
    block(tab, "Samples").locator("img").first.wait_for(timeout=60_000)
    assert no_error_toasts(page)


def test_the_header_names_the_tabs_there_are_and_an_error_shows_once(page):
    import time
    from semedit.ui.app import INTRO
    tabs = [t.inner_text().strip() for t in page.get_by_role("tab").all()]
    assert tabs == ["Inversion comparison", "Attribute sliders", "ChunkyGAN segment editor", "Hairstyle transfer",
                    "Samples"]
    for named in ("inversion comparison", "attribute sliders", "ChunkyGAN segment editing", "hairstyle transfer"):
        assert named in INTRO and page.get_by_text(named, exact=False).count() > 0
    tab = panel(page, "Inversion comparison")
    tab.get_by_role("button", name="Invert").click()  # no image yet
    message = page.get_by_text("Upload an image or pick an example first.")
    message.first.wait_for(timeout=30_000)
    time.sleep(1.5)  # a second copy would have arrived by now
    assert message.filter(visible=True).count() == 1
    for method in ("W optimisation", "W+ optimisation", "ChunkyGAN"):  # the loss plot's legend
        assert tab.get_by_text(f"\u25ac {method}").count() == 1
