"""Screenshots of the running app for the README (dev tool; needs `pip install playwright`
and a Chromium, e.g. Debian's `apt-get install chromium`).

    python app.py &   # then:
    python tools/screenshot.py --url http://127.0.0.1:7860 --out docs/screenshot.png --steps 60 \
        --segments --tick "e4e (embedded-e4e-64)" --tick "HyperStyle (embedded-hyperstyle-64)"
    python tools/screenshot.py --tab Samples --out docs/samples.png
    python tools/screenshot.py --tab "Attribute sliders" --out docs/sliders.png --seed 3
    SEMEDIT_DEFAULT_GENERATOR=embedded-portraits-64-gan-map8 python app.py &   # another generator
    python tools/screenshot.py --tab "Attribute sliders" --units 0,2 --strip age --out docs/sliders.png
    python tools/screenshot.py --tab "Hairstyle transfer" --pair 0 --out docs/hair.png

The inversion scenario picks the first example, sets the steps, presses Invert and waits for
the run to finish (with --segments, it first shows the target's segments); the samples
scenario presses Sample and Labels; the sliders scenario loads a sample, sets the first sliders to
--units (smile +2, age +2 by default; 0 leaves one alone) and makes the strip of --strip (default:
the first direction); the hair scenario picks example pair --pair, presses Transfer and waits for
the result.
"""
import argparse
import re

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--out", default="docs/screenshot.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--tab", default="Inversion comparison", choices=["Inversion comparison", "Samples",
                                                                      "Attribute sliders", "Hairstyle transfer"])
    ap.add_argument("--pair", type=int, default=0, help="the example pair the hair scenario transfers")
    ap.add_argument("--seed", type=int, default=3, help="the sample the sliders scenario edits")
    ap.add_argument("--units", default="2,2", help="the first sliders' values, comma-separated")
    ap.add_argument("--strip", help="the direction of the strip (default: the first)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--timeout", type=int, default=600, help="seconds to wait for the run")
    ap.add_argument("--segments", action="store_true", help="open Segments and segment the target first")
    ap.add_argument("--tick", action="append", default=[],
                    help="a method checkbox to tick as well (its label, e.g. 'HyperStyle (embedded-hyperstyle-64)')")
    a = ap.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(a.url, wait_until="load", timeout=120_000)
        page.get_by_role("tab", name=a.tab).wait_for(timeout=120_000)
        page.get_by_role("tab", name=a.tab).click()
        if a.tab == "Samples":
            page.get_by_role("button", name="Sample", exact=True).click()
            page.wait_for_timeout(3000)
            page.get_by_role("button", name="Labels", exact=True).click()
            page.wait_for_timeout(4000)
        elif a.tab == "Attribute sliders":
            seed = page.get_by_label("Sample seed", exact=False).first
            seed.fill(str(a.seed))
            page.get_by_role("button", name="Load source", exact=True).click()
            page.get_by_text("Source: sample", exact=False).wait_for(timeout=a.timeout * 1000)
            units = page.get_by_label("Units (standard deviations", exact=False).and_(
                page.locator("input[type='number']"))  # each slider's number box, not its range input
            for i, value in enumerate(a.units.split(",")):
                if float(value) == 0:
                    continue
                units.nth(i).fill(value.strip())
                units.nth(i).press("Enter")
                page.wait_for_timeout(2500)
            page.get_by_text("Strip: z - 2kn", exact=False).first.click()
            if a.strip:
                chooser = page.get_by_label("Direction", exact=True)
                chooser.fill(a.strip)
                chooser.press("Enter")
            page.get_by_role("button", name="Make the strip", exact=True).click()
            page.wait_for_timeout(5000)
        elif a.tab == "Hairstyle transfer":
            page.locator("tr.tr-body:visible").nth(a.pair).click()  # the examples table's rows
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Transfer the hair", exact=True).click()
            page.get_by_text(re.compile(r"\d\.\d\d s\.$")).first.wait_for(timeout=a.timeout * 1000)
            page.wait_for_timeout(2000)
        else:
            page.locator(".gallery-item, [data-testid='examples'] button").first.click()
            page.wait_for_timeout(1500)
            steps = page.get_by_label("Steps per method", exact=False).first
            steps.fill(str(a.steps))
            steps.press("Enter")
            for label in a.tick:
                page.get_by_label(label, exact=True).check()
            if a.segments:
                page.get_by_text("Segments: ChunkyGAN", exact=False).first.click()
                page.get_by_role("button", name="Segment the target", exact=True).click()
                page.wait_for_timeout(4000)
            page.get_by_role("button", name="Invert", exact=True).click()
            page.get_by_text("Done:", exact=False).wait_for(timeout=a.timeout * 1000)
            page.wait_for_timeout(1500)
        page.screenshot(path=a.out, full_page=True)
        browser.close()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
