"""Screenshot of the running app for the README (dev tool; needs `pip install playwright`
and a Chromium, e.g. Debian's `apt-get install chromium`).

    python app.py &   # then:
    python tools/screenshot.py --url http://127.0.0.1:7860 --out docs/screenshot.png
"""
import argparse

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--out", default="docs/screenshot.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--click", default="Sample", help="button to press before the screenshot")
    a = ap.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(a.url, wait_until="networkidle")
        if a.click:
            page.get_by_role("button", name=a.click, exact=True).click()
            page.wait_for_selector("img[src*='file=']", timeout=60_000)
            page.wait_for_timeout(1500)
        page.screenshot(path=a.out, full_page=True)
        browser.close()
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
