"""The app end to end: launch it on a loopback port and drive it through gradio_client."""
import numpy as np
import pytest
from PIL import Image

from semedit.registry import Registry, load_catalogue
from semedit.settings import WEIGHTS_DIR, Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client
    from semedit.ui import build_demo
    settings = Settings(device="cpu", cache_dir=tmp_path_factory.mktemp("cache"), hub_offline=True,
                        hub_cache_dir=tmp_path_factory.mktemp("hub"), max_samples=6)
    registry = Registry(load_catalogue(WEIGHTS_DIR / "catalogue.json"), settings)
    demo = build_demo(registry, settings)
    demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_sample_endpoint_returns_images(client):
    gallery = client.predict("random-64", 3, 4, 0.7, api_name="/sample")
    assert len(gallery) == 4
    images = [np.asarray(Image.open(item["image"])) for item in gallery]
    assert all(im.shape == (64, 64, 3) for im in images)
    assert [item["caption"] for item in gallery] == ["seed 3", "seed 4", "seed 5", "seed 6"]
    assert not np.array_equal(images[0], images[1])
    again = client.predict("random-64", 4, 1, 0.7, api_name="/sample")  # same seed -> same image
    assert np.array_equal(np.asarray(Image.open(again[0]["image"])), images[1])


def test_bad_input_gives_message_and_app_keeps_serving(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="maximum value 6|between 1 and 6"):
        client.predict("random-64", 0, 50, 0.7, api_name="/sample")
    with pytest.raises(AppError, match="DragGan/DragGan-Models"):
        client.predict("ffhq-1024-nvlabs", 0, 1, 0.7, api_name="/sample")  # offline, not cached
    assert len(client.predict("random-64", 0, 1, 0.7, api_name="/sample")) == 1


def test_api_lists_named_endpoints(client):
    assert "/sample" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
